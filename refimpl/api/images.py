"""Image routes: /images/create (pull), /images/json, /images/{name}/json, history, tag,
DELETE /images/{name}, /images/get (save), /images/load."""


def register(router, engine) -> None:
    pass
