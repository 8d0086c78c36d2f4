"""Images without side effects beyond their own directories: references, digests,
manifests, the blob store and layer tars. Nothing here mounts, unshares or speaks
HTTP; the engine and the registry client build on these pieces."""
