"""The fleet: desired state, live state, their difference, provisioning, sweeps and rolls."""
