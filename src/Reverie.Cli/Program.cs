using Reverie.Cli;

Reverie.TorchRuntime.QuietNativeWarnings();
return await ReverieCli.RunAsync(args);
