using Reverie.Bench;

Reverie.TorchRuntime.Initialize();

return args.FirstOrDefault() switch
{
    "forward" => ForwardBenchmark.Run(args.Skip(1).ToArray()),
    "dream" => DreamBenchmark.Run(args.Skip(1).ToArray()),
    "dream-default" => DefaultDreamBenchmark.Run(args.Skip(1).ToArray()),
    "visualize" => VisualizeBenchmark.Run(args.Skip(1).ToArray()),
    "style" => StyleBenchmark.Run(args.Skip(1).ToArray()),
    "train" => TrainBenchmark.Run(args.Skip(1).ToArray()),
    "pgd" => PgdBenchmark.Run(args.Skip(1).ToArray()),
    "autoattack" => AutoAttackBenchmark.Run(args.Skip(1).ToArray()),
    "profile" => ProfileBenchmark.Run(args.Skip(1).ToArray()),
    "explain" => ExplainBenchmark.Run(args.Skip(1).ToArray()),
    "studio" => StudioBenchmark.Run(args.Skip(1).ToArray()),
    "batch" => BatchBenchmark.Run(args.Skip(1).ToArray()),
    "video" => VideoBenchmark.Run(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: reverie-bench forward [--reps N] [--sizes 224,512] | dream [--reps N] [--no-scaling] | dream-default [--reps N] | visualize [--reps N] [--steps N] | style [--steps N] [--size PX] [--fast-only] | train [--reps N] [--limit IMAGES] | pgd [--reps N] [--images N] | autoattack [--images N] [--queries N] [--eps E] | profile [--reps N] [--peak GFLOPS] | explain [--reps N] | studio [--reps N] | batch [--items N] [--size PX] [--steps N] | video [--frames 100]");
    return 2;
}
