"""The LiveKit Agents worker: org resolution, per-call session building, CLI, and the
offline call simulator."""
