using Reverie.Tests.Infrastructure;
using Reverie.Training;
using Xunit.Abstractions;

namespace Reverie.Tests.Training;

/// <summary>
/// The brief's transfer learning at a reduced budget: a base trained on eight Fashion-MNIST classes,
/// its top replaced and retrained (base frozen) on the two held-out classes with 200 images each.
/// </summary>
public class TransferTests(ITestOutputHelper output)
{
    static readonly string[] NoShoes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Bag"];

    [Fact]
    [Trait("Category", "Slow")]
    public void AFrozenBaseLearnsTwoNewClassesFromFewImagesBetterThanScratch()
    {
        using var dir = new TempDir();
        // The base: the fashion architecture trained on the eight other classes (models/transfer/base-no-shoes.json
        // records its recipe); it has never seen a sneaker or an ankle boot.
        string basePath = Path.Combine(Paths.RepoRoot, "models", "transfer", "base-no-shoes.json");
        var baseInfo = Checkpoint.ReadInfo(basePath);
        Assert.Equal(NoShoes, baseInfo.Labels);
        output.WriteLine($"base on 8 classes: test accuracy {baseInfo.Metrics!["testAccuracy"]!.GetValue<double>():P2}");
        var shoes = new[] { "Sneaker", "Ankle boot" };
        var head = TrainingRun.Finished(new TrainingJobOptions
        {
            Data = "fashion-mnist", Base = basePath, Freeze = true, Classes = shoes, PerClass = 200, ValidationSplit = 0, Epochs = 40, Seed = 0,
        }, dir.File("head"));
        var scratch = TrainingRun.Finished(new TrainingJobOptions
        {
            Data = "fashion-mnist", Arch = "fashion", Classes = shoes, PerClass = 200, ValidationSplit = 0, Epochs = 40, Seed = 0,
        }, dir.File("scratch"));
        double headAccuracy = head.TestAccuracy!.Value, scratchAccuracy = scratch.TestAccuracy!.Value;
        output.WriteLine($"Sneaker vs Ankle boot, 200 images each: frozen base + new top {headAccuracy:P2}, from scratch {scratchAccuracy:P2} on {head.TestImages} test images");
        Assert.Equal(2000, head.TestImages);
        Assert.True(headAccuracy >= 0.95, $"transfer reached only {headAccuracy:P2}");
        Assert.True(headAccuracy > scratchAccuracy, $"transfer {headAccuracy:P2} does not beat scratch {scratchAccuracy:P2}");

        // The base's layers are bit for bit those of the base checkpoint.
        Assert.NotNull(head.FrozenChecksumBefore);
        Assert.Equal(head.FrozenChecksumBefore, head.FrozenChecksumAfter);
        using var baseNet = Checkpoint.Load(basePath);
        using var headNet = Checkpoint.Load(dir.File("head"));
        Assert.Equal(TrainingJob.FrozenChecksum(baseNet, "fc1"), TrainingJob.FrozenChecksum(headNet, "logits")); // the convolutions; the base's dense top was replaced
        Assert.Equal(shoes, headNet.Labels);
        var info = Checkpoint.ReadInfo(dir.File("head"));
        Assert.True(info.Recipe!["options"]!["freeze"]!.GetValue<bool>()); // with --freeze, the new top ("logits") alone is trained
    }
}
