"""Compare the generated OpenAPI schema with the seed contract, property by property."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The contract, copied into the repository so the tests run wherever it is cloned;
# the shared original next to the repository, when there is one, must not differ.
SEED_PATH = ROOT / "docs" / "seed" / "omnitron-capture-order.openapi.json"
SHARED_SEED_PATH = ROOT.parent / "shared" / "seed" / "omnitron-capture-order.openapi.json"
SEED_COMPONENTS = [
    "CaptureOrderSerializer",
    "CaptureOrderItemSerializer",
    "Order",
    "ShippingCompany",
]
ATTRIBUTES = ("type", "format", "nullable", "enum")


def load_seed() -> dict:
    return json.loads(SEED_PATH.read_text())


def _deref(schema: dict, components: dict) -> dict:
    while "$ref" in schema:
        schema = components[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def normalize(schema: dict, components: dict) -> dict:
    """A property's comparable facts: type, format, nullable, enum, whatever the
    $ref / allOf / oneOf-with-NullEnum wrapping drf-spectacular put around them."""
    nullable = bool(schema.get("nullable"))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
    if "oneOf" in schema:
        choices = [_deref(s, components) for s in schema["oneOf"]]
        real = [c for c in choices if c.get("enum") != [None]]
        nullable = nullable or len(real) < len(choices)
        schema = real[0] if len(real) == 1 else schema
    schema = _deref(schema, components)
    nullable = nullable or bool(schema.get("nullable"))
    enum = schema.get("enum")
    if enum is not None:
        enum = [value for value in enum if value not in (None, "")]
    return {
        "type": schema.get("type"),
        "format": schema.get("format"),
        "nullable": nullable,
        "enum": enum,
    }


def differences(ours: dict, seed: dict) -> dict[tuple, tuple]:
    """{(component, property or "", attribute): (ours, seed)} for every difference in the
    seed's components, plus the security scheme and the capture operation."""
    found = {}
    our_components = ours["components"]["schemas"]
    seed_components = seed["components"]["schemas"]
    for name in SEED_COMPONENTS:
        if name not in our_components:
            found[(name, "", "component")] = (None, "present")
            continue
        mine, theirs = our_components[name], seed_components[name]
        for key in ("type", "required", "enum"):
            if mine.get(key) is not None or theirs.get(key) is not None:
                a, b = mine.get(key), theirs.get(key)
                if key == "required":
                    a, b = sorted(a or []), sorted(b or [])
                if a != b:
                    found[(name, "", key)] = (a, b)
        my_props, seed_props = mine.get("properties", {}), theirs.get("properties", {})
        for prop in seed_props.keys() - my_props.keys():
            found[(name, prop, "property")] = (None, "present")
        for prop in my_props.keys() - seed_props.keys():
            found[(name, prop, "property")] = ("present", None)
        for prop in my_props.keys() & seed_props.keys():
            a = normalize(my_props[prop], our_components)
            b = normalize(seed_props[prop], seed_components)
            if prop == "delivery_range":  # an object with start and end
                a["properties"] = sorted(
                    _deref(my_props[prop], our_components).get("properties", {})
                )
                b["properties"] = sorted(seed_props[prop].get("properties", {}))
            for attribute in a:
                if a[attribute] != b[attribute]:
                    found[(name, prop, attribute)] = (a[attribute], b[attribute])

    scheme = ours["components"].get("securitySchemes", {}).get("Token", {})
    for key, value in seed["components"]["securitySchemes"]["Token"].items():
        if scheme.get(key) != value:
            found[("securitySchemes.Token", "", key)] = (scheme.get(key), value)

    path = "/api/v1/capture-order/"
    mine, theirs = ours["paths"].get(path, {}).get("post", {}), seed["paths"][path]["post"]
    for key in ("summary", "description", "tags"):
        if mine.get(key) != theirs.get(key):
            found[("POST " + path, "", key)] = (mine.get(key), theirs.get(key))
    request_ref = mine.get("requestBody", {}).get("content", {}).get("application/json", {})
    if request_ref.get("schema") != {"$ref": "#/components/schemas/CaptureOrderSerializer"}:
        found[("POST " + path, "", "requestBody")] = (
            request_ref.get("schema"),
            "CaptureOrderSerializer",
        )
    ok = mine.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    if ok.get("schema", {}).get("$ref") != "#/components/schemas/Order":
        found[("POST " + path, "200", "schema")] = (ok.get("schema"), "Order")
    unauthorized = mine.get("responses", {}).get("401", {}).get("content", {})
    props = unauthorized.get("application/json", {}).get("schema", {}).get("properties", {})
    for field in ("detail", "code"):
        if props.get(field, {}).get("type") != "string":
            found[("POST " + path, "401", field)] = (props.get(field), "string")
    return found
