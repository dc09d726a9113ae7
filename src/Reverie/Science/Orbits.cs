namespace Reverie.Science;

/// <summary>
/// The Copernicus data: Earth and Mars on circular, coplanar orbits around the Sun, observed
/// from Earth. Angles are in radians; the heliocentric angles φE and φM grow linearly with time,
/// the observed ones (θS, the Sun seen from Earth, and θM, Mars seen from Earth) do not.
/// </summary>
internal static class Orbits
{
    /// <summary>Earth's orbital period in days.</summary>
    public const double EarthPeriod = 365.26;
    /// <summary>Mars' orbital period in days.</summary>
    public const double MarsPeriod = 686.98;
    /// <summary>Mars' orbital radius in astronomical units (Earth's is 1).</summary>
    public const double MarsRadius = 1.52366231;
    /// <summary>Days between observations.</summary>
    public const double StepDays = 7;

    /// <summary>Heliocentric angle advanced by Earth in one observation step.</summary>
    public static double EarthStep => 2 * Math.PI * StepDays / EarthPeriod;
    /// <summary>Heliocentric angle advanced by Mars in one observation step.</summary>
    public static double MarsStep => 2 * Math.PI * StepDays / MarsPeriod;

    /// <summary>What Earth sees: the angles of the Sun and of Mars, each in (−π, π].</summary>
    public static (double ThetaSun, double ThetaMars) Observe(double phiEarth, double phiMars)
    {
        double ex = Math.Cos(phiEarth), ey = Math.Sin(phiEarth);
        double mx = MarsRadius * Math.Cos(phiMars), my = MarsRadius * Math.Sin(phiMars);
        return (Math.Atan2(-ey, -ex), Math.Atan2(my - ey, mx - ex));
    }

    /// <summary>
    /// The inverse of <see cref="Observe"/>: the heliocentric angles, in [0, 2π), from what Earth
    /// sees. Earth is opposite the Sun; Mars is the point along the line of sight that lies on
    /// its orbit (the distance ρ solves |E + ρu|² = a², whose positive root is unique since a > 1).
    /// This is the hand-built "Copernican encoder" the analysis is checked against.
    /// </summary>
    public static (double PhiEarth, double PhiMars) Heliocentric(double thetaSun, double thetaMars)
    {
        double ex = -Math.Cos(thetaSun), ey = -Math.Sin(thetaSun);
        double ux = Math.Cos(thetaMars), uy = Math.Sin(thetaMars);
        double eu = ex * ux + ey * uy;
        double rho = -eu + Math.Sqrt(eu * eu + MarsRadius * MarsRadius - 1);
        return (Wrap(Math.Atan2(ey, ex)), Wrap(Math.Atan2(ey + rho * uy, ex + rho * ux)));
    }

    /// <summary>An angle brought into [0, 2π).</summary>
    public static double Wrap(double a)
    {
        double r = a % (2 * Math.PI);
        return r < 0 ? r + 2 * Math.PI : r;
    }

    /// <summary>The absolute difference of two angles, in [0, π].</summary>
    public static double AngleError(double a, double b) => Math.Abs(Wrap(a - b + Math.PI) - Math.PI);
}

/// <summary>
/// Series of observations from random starting phases: for each series and step, the observed
/// angles (θS, θM) and, for analysis only, the heliocentric ones (φE, φM; the starting phases are
/// in [0, 2π) and they grow without wrapping along a series).
/// </summary>
internal sealed class CopernicusData
{
    /// <summary>Number of series.</summary>
    public int Count { get; }
    /// <summary>Observations per series.</summary>
    public int Length { get; }
    /// <summary>θS per series and step, [Count * Length].</summary>
    public double[] ThetaSun { get; }
    /// <summary>θM per series and step.</summary>
    public double[] ThetaMars { get; }
    /// <summary>φE per series and step.</summary>
    public double[] PhiEarth { get; }
    /// <summary>φM per series and step.</summary>
    public double[] PhiMars { get; }

    CopernicusData(int count, int length)
    {
        Count = count; Length = length;
        ThetaSun = new double[count * length]; ThetaMars = new double[count * length];
        PhiEarth = new double[count * length]; PhiMars = new double[count * length];
    }

    /// <summary>Draws <paramref name="count"/> series of <paramref name="length"/> weekly observations.</summary>
    public static CopernicusData Generate(int count, int length, int seed)
    {
        var rng = new Random(seed);
        var d = new CopernicusData(count, length);
        for (int s = 0; s < count; s++)
        {
            double e0 = rng.NextDouble() * 2 * Math.PI, m0 = rng.NextDouble() * 2 * Math.PI;
            for (int t = 0; t < length; t++)
            {
                int k = s * length + t;
                d.PhiEarth[k] = e0 + t * Orbits.EarthStep;
                d.PhiMars[k] = m0 + t * Orbits.MarsStep;
                (d.ThetaSun[k], d.ThetaMars[k]) = Orbits.Observe(d.PhiEarth[k], d.PhiMars[k]);
            }
        }
        return d;
    }

    /// <summary>
    /// The network's view of an observation: (cos θS, sin θS, cos θM, sin θM). Angles are given to
    /// and predicted by the network as points on the unit circle, so that wrapping at 2π is no jump.
    /// </summary>
    public static float[] Encode(double thetaSun, double thetaMars) =>
        [(float)Math.Cos(thetaSun), (float)Math.Sin(thetaSun), (float)Math.Cos(thetaMars), (float)Math.Sin(thetaMars)];

    /// <summary>All observations encoded, [Count * Length * 4] in series-major order.</summary>
    public float[] Encoded()
    {
        var x = new float[Count * Length * 4];
        for (int k = 0; k < Count * Length; k++) Encode(ThetaSun[k], ThetaMars[k]).CopyTo(x, k * 4);
        return x;
    }
}
