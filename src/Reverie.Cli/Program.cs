using Reverie.Cli;

return await ReverieCli.RunAsync(args);
