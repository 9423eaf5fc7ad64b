"""The project's own tooling: installs the servers, builds, runs and tests the lattice."""
