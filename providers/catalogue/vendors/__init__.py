"""One module per vendor: everything the product knows about it — its options model, how
its livekit object is built, what it loads at prewarm, its list prices, the cheap check that
proves a key works — ending in ``SPECS``, which ``providers.catalogue.registry`` collects.

Adding a provider means one module here and one line in the registry's ``VENDORS``."""
