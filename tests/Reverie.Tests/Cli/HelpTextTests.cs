using System.CommandLine;
using Reverie.Cli;

namespace Reverie.Tests.Cli;

/// <summary>What every command's --help lists, checked over the whole command tree.</summary>
public class HelpTextTests
{
    static IEnumerable<(string Path, Command Command)> Walk(Command c, string path)
    {
        yield return (path, c);
        foreach (var sub in c.Subcommands)
            foreach (var x in Walk(sub, $"{path} {sub.Name}")) yield return x;
    }

    /// <summary>No command lists an option twice (`activations --help` and `batch plan microscope --help` listed --force twice; issue 40).</summary>
    [Fact]
    public void EveryOptionIsListedOnce()
    {
        var commands = Walk(ReverieCli.Build(), "reverie").ToList();
        Assert.True(commands.Count > 30, $"{commands.Count} commands");
        foreach (var (path, command) in commands)
        {
            var twice = command.Options.GroupBy(o => o.Name).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.True(twice.Count == 0, $"{path} lists {string.Join(", ", twice)} more than once");
        }
    }
}
