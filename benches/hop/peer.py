"""The generated peer: a FastMCP server built from the official SunCo OpenAPI spec
(`FastMCP.from_openapi`, PyPI fastmcp), calling the simulator, served over Streamable HTTP,
stateless, with JSON answers. Usage: peer.py SPEC API_URL KEY_ID SECRET PORT"""
import asyncio
import sys

import httpx2
import yaml
from fastmcp import FastMCP


def drop_boolean_required(node):
    """The spec marks a few schema properties `required: true` (OpenAPI wants a list of names on
    the parent; a boolean is valid only on parameters and request bodies), which the generator
    refuses: those booleans are dropped, nothing else is changed."""
    if isinstance(node, dict):
        if isinstance(node.get("required"), bool) and "in" not in node and "content" not in node:
            del node["required"]
        for value in node.values():
            drop_boolean_required(value)
    elif isinstance(node, list):
        for value in node:
            drop_boolean_required(value)


def main():
    spec_path, api_url, key_id, secret, port = sys.argv[1:6]
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    drop_boolean_required(spec)
    client = httpx2.AsyncClient(base_url=api_url, auth=(key_id, secret), timeout=30)
    server = FastMCP.from_openapi(spec, client=client, name="sunco-openapi-peer")
    asyncio.run(
        server.run_http_async(
            show_banner=False,
            host="127.0.0.1",
            port=int(port),
            log_level="warning",
            stateless_http=True,
            json_response=True,
        )
    )


if __name__ == "__main__":
    main()
