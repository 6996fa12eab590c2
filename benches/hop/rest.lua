-- wrk: GET one conversation straight from the API (the simulator, or nginx in front of it).
-- HOP_AUTH: the Authorization header value; HOP_PATH: the request path.
wrk.method = "GET"
wrk.path = os.getenv("HOP_PATH")
wrk.headers["Authorization"] = os.getenv("HOP_AUTH")
