using Reverie.Bench;

Reverie.TorchRuntime.Initialize();

return args.FirstOrDefault() switch
{
    "forward" => ForwardBenchmark.Run(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: reverie-bench forward [--reps N] [--sizes 224,512]");
    return 2;
}
