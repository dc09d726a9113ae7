using System.Diagnostics;
using System.IO.Compression;
using Reverie.Models.Torch;
using Reverie.Tests.Infrastructure;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Reverie.Tests.Models;

/// <summary>
/// Mutation fuzzing of the weights readers: thousands of damaged safetensors headers, pickles,
/// legacy files and zip archives, each of which must either load or be refused with a
/// <see cref="BadInputException"/>: no other exception, no crash, no hang.
/// </summary>
public class LoaderFuzzTests(TorchFixtures fixtures, ITestOutputHelper output) : IClassFixture<TorchFixtures>
{
    /// <summary>One random mutation: flip bits, overwrite with interesting bytes, insert, delete, duplicate a run, or truncate; mostly within the first <paramref name="focus"/> bytes.</summary>
    static byte[] Mutate(byte[] src, Random rng, int focus)
    {
        var b = new List<byte>(src);
        int edits = 1 + rng.Next(4);
        byte[] interesting = [0x00, 0xff, 0x7f, 0x80, 0x01, (byte)'{', (byte)'"', (byte)']', (byte)'.', 0x8a, 0x4b, 0x58, 0x71, 0x28];
        for (int k = 0; k < edits && b.Count > 0; k++)
        {
            int at = rng.Next(Math.Min(b.Count, rng.Next(4) == 0 ? b.Count : focus));
            switch (rng.Next(7))
            {
                case 0: b[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b[at] = interesting[rng.Next(interesting.Length)]; break;
                case 2: b[at] = (byte)rng.Next(256); break;
                case 3: b.Insert(at, (byte)rng.Next(256)); break;
                case 4: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rng.Next(8))); break;
                case 5:
                    int len = Math.Min(b.Count - at, 1 + rng.Next(16));
                    b.InsertRange(rng.Next(b.Count), b.GetRange(at, len));
                    break;
                default: b.RemoveRange(at, b.Count - at); break;
            }
        }
        return b.ToArray();
    }

    sealed class Tally
    {
        public int Cases, Loaded, Refused;
        public readonly List<string> Failures = [];
        public readonly HashSet<string> Messages = [];

        public void Run(string what, Action load)
        {
            Cases++;
            try { load(); Loaded++; }
            catch (BadInputException ex)
            {
                Refused++;
                Messages.Add(ex.Message);
                if (string.IsNullOrWhiteSpace(ex.Message) || ex.Message.Contains('\n')) Failures.Add($"{what}: not one sentence: {ex.Message}");
            }
            catch (Exception ex) { Failures.Add($"{what}: {ex.GetType().Name}: {ex.Message.Split('\n')[0]}"); }
        }
    }

    [Fact]
    public async Task TenThousandMutatedFilesLoadOrAreRefusedInOneSentence()
    {
        using var dir = new TempDir();
        var tally = new Tally();
        var work = Task.Run(() =>
        {
            using var scope = NewDisposeScope();
            // REVERIE_FUZZ_SEED runs another sequence of mutations (for fuzzing deeper locally).
            int seed = int.TryParse(Environment.GetEnvironmentVariable("REVERIE_FUZZ_SEED"), out var sv) ? sv : 12345;
            var rng = new Random(seed);

            // safetensors: a seeded file of several dtypes, mutated mostly in its header.
            var tensors = new Dictionary<string, Tensor>
            {
                ["conv.weight"] = randn(4, 3, 3, 3), ["conv.bias"] = randn(4).to(ScalarType.Float16),
                ["fc.weight"] = randn(5, 6).to(ScalarType.BFloat16), ["steps"] = tensor(new long[] { 1, 2, 3 }),
            };
            string st = dir.File("base.safetensors");
            SafeTensors.Save(st, tensors);
            var stBytes = File.ReadAllBytes(st);
            int headerEnd = 8 + (int)BitConverter.ToInt64(stBytes, 0);
            for (int i = 0; i < 4000; i++)
            {
                var m = Mutate(stBytes, rng, headerEnd);
                tally.Run($"safetensors #{i}", () => { using var s = new MemoryStream(m); DisposeAll(SafeTensors.Load(s, "fuzz.safetensors", out _)); });
            }

            // Pickles: data.pkl of a zip archive PyTorch wrote, mutated, rebuilt into the archive.
            var zipBytes = File.ReadAllBytes(Path.Combine(fixtures.Path, "zip_float32.pth"));
            byte[] pkl;
            string pklName;
            using (var zip = new ZipArchive(new MemoryStream(zipBytes)))
            {
                var e = zip.Entries.First(e => e.FullName.EndsWith("data.pkl"));
                pklName = e.FullName;
                using var ms = new MemoryStream();
                using (var s = e.Open()) s.CopyTo(ms);
                pkl = ms.ToArray();
            }
            for (int i = 0; i < 3000; i++)
            {
                var m = Mutate(pkl, rng, pkl.Length);
                tally.Run($"pickle #{i}", () => _ = new SafeUnpickler(m, TorchFile.AllowedGlobals).Load(id => id));
                if (i % 3 == 0)
                {
                    string path = dir.File($"pkl{i % 7}.pth");
                    File.WriteAllBytes(path, Rezip(zipBytes, pklName, m));
                    tally.Run($"archive with pickle #{i}", () => DisposeAll(TorchFile.Load(path)));
                }
            }

            // Whole files: the legacy format (pickles and raw storages back to back) and the zip archive's bytes.
            var legacy = File.ReadAllBytes(Path.Combine(fixtures.Path, "legacy_float16.pth"));
            for (int i = 0; i < 2000; i++)
            {
                string path = dir.File($"legacy{i % 7}.pth");
                File.WriteAllBytes(path, Mutate(legacy, rng, legacy.Length));
                tally.Run($"legacy #{i}", () => DisposeAll(TorchFile.Load(path)));
            }
            for (int i = 0; i < 1000; i++)
            {
                string path = dir.File($"zip{i % 7}.pth");
                File.WriteAllBytes(path, Mutate(zipBytes, rng, zipBytes.Length));
                tally.Run($"zip #{i}", () => DisposeAll(TorchFile.Load(path)));
            }
        });
        // A guard against hangs, far above the few seconds this takes.
        var finished = await Task.WhenAny(work, Task.Delay(TimeSpan.FromMinutes(10)));
        Assert.True(finished == work, "the fuzzing did not finish: a reader hangs on some input");
        await work;
        output.WriteLine($"{tally.Cases} cases: {tally.Loaded} loaded, {tally.Refused} refused with {tally.Messages.Count} distinct messages");
        foreach (var m in tally.Messages.Take(12)) output.WriteLine("  " + m);
        foreach (var f in tally.Failures.Take(20)) output.WriteLine("FAIL " + f);
        Assert.True(tally.Cases >= 10_000);
        Assert.Empty(tally.Failures);
        Assert.True(tally.Refused > tally.Cases / 4, "too few mutations were refused for the fuzzing to mean anything");
    }

    static void DisposeAll(Dictionary<string, Tensor> d) { foreach (var t in d.Values) t.Dispose(); }

    static byte[] Rezip(byte[] original, string entryName, byte[] replacement)
    {
        using var outMs = new MemoryStream();
        using (var src = new ZipArchive(new MemoryStream(original)))
        using (var dst = new ZipArchive(outMs, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var e in src.Entries)
            {
                using var w = dst.CreateEntry(e.FullName, CompressionLevel.NoCompression).Open();
                if (e.FullName == entryName) w.Write(replacement);
                else using (var r = e.Open()) r.CopyTo(w);
            }
        }
        return outMs.ToArray();
    }
}
