"""Per-organization provider configuration: types, backend loader and cache, environment
config, the provider registry, the factory that turns configs into livekit chains, and
process-wide provider health."""
