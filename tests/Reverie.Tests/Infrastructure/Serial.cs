// One test at a time. TorchSharp frees its temporary Scalars in finalizers without keeping them
// alive during the libtorch call that reads them (Reverie's own code uses Scalars.S, TorchSharp's
// insides cannot: `a + b` passes an implicit alpha of 1). A garbage collection started by a test on
// another thread can then free a Scalar in use: a wrong number, an "Expected false to be true" error,
// or a crashed test host (ScalarLifetimeTests measures the race). Tests that run alone leave no
// other thread allocating while one is inside libtorch. The CLI processes the tests start are
// separate processes, each with one working thread.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
