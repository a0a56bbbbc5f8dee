"""The HTTP wing: the FastAPI app, its routes, dependencies, uploads, errors, auth, monitoring and schemas.

Everything here turns HTTP into calls on the core (the rest of ``service``) and the answers back into HTTP.
The core never imports from here.
"""
