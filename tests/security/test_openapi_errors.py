"""The OpenAPI document lists the error statuses the guards can answer (the fuzz run holds the
app to it)."""

from httpx import AsyncClient


async def test_every_guarded_operation_documents_its_refusals(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "ErrorOut" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            if operation.get("security"):
                assert "401" in responses, where
            if "requestBody" in operation:
                assert {"413", "422"} <= responses.keys(), where
    assert "403" in schema["paths"]["/items"]["post"]["responses"]
    assert "403" in schema["paths"]["/users"]["get"]["responses"]
    assert "403" not in schema["paths"]["/users/me"]["get"]["responses"]  # any role may
    assert "429" in schema["paths"]["/token"]["post"]["responses"]
