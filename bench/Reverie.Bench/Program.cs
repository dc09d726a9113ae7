using Reverie.Bench;

// Reverie's module initializer quiets libtorch's logging; run it before anything touches TorchSharp.
System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(typeof(Reverie.Models.InputSpec).Module.ModuleHandle);

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
