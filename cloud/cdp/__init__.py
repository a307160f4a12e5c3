"""The CDP: OneID, the 360 profile, tags, segments, erasure and channel-file imports."""
