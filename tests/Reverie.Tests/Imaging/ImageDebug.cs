using Reverie.Imaging;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
namespace Reverie.Tests.Imaging;
public class ImageDebug(ITestOutputHelper o)
{
    [Fact]
    public void Dbg()
    {
        foreach (var f in new[] { "coffee.png", "rocket.jpg" })
        {
            using var t = ImageIO.Load(Paths.Sample(f));
            o.WriteLine($"{f} [{string.Join(",", t.shape)}] min {t.min().item<float>()} max {t.max().item<float>()} mean {t.mean().item<float>()}");
            ImageIO.Save(t, $"/tmp/dbg_{f}.png");
            using var r = ImageIO.Resize(t, 224, 224);
            o.WriteLine($"resized min {r.min().item<float>()} max {r.max().item<float>()} mean {r.mean().item<float>()}");
        }
    }
}
public class NanDebug(ITestOutputHelper o)
{
    [Fact]
    public void Nan()
    {
        using var net = Reverie.Models.OnnxNetwork.Load(Paths.GoogLeNet);
        using var t = ImageIO.Load(Paths.Sample("rocket.jpg"));
        using var r = ImageIO.Resize(t, 224, 224);
        var outs = ((Reverie.Models.OnnxNetwork)net).Graph.Run(new Dictionary<string, TorchSharp.torch.Tensor> { ["data_0"] = r }, ((Reverie.Models.OnnxNetwork)net).Graph.Nodes.Select(n => n.Outputs[0]).ToList());
        foreach (var n in net.Graph.Nodes) o.WriteLine($"{n.OpType} {n.Outputs[0]} nan={outs[n.Outputs[0]].isnan().any().item<bool>()} max={outs[n.Outputs[0]].abs().max().item<float>()}");
    }
}
