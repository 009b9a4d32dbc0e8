"""The machinery that runs any model family: plugin manager and registries, spec loading,
the network container, stages and the training loop, checkpoints, data, devices and the
regularisers every trainer shares."""
