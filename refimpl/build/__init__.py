"""refimpl.build: Docker's classic builder.

    dockerfile.py   the Dockerfile grammar (pure): parse(), expand(), words(), pairs()
    context.py      .dockerignore rules (Ignore), the context tar, COPY sources and their hashes
    rootfs.py       an image's merged filesystem read from its layer directories (RootView)
    builder.py      Builder(engine, say).build(context_stream, BuildOptions) -> image ID
"""
