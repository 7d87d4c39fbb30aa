"""Property tests of the capture input serializer (hypothesis).

The serializer validates the common shape of `order_items` without DRF's per-item
machinery (capture/serializers.py, _plain_items). For any input whatsoever, it must
answer exactly as DRF's own path does: the same validity, the same validated data,
the same errors and codes. A replay may skip validation for a body that validation
would give back unchanged (capture/idempotency.py, replay_as_sent), and the
authentication statement reads the order a plain body names before validation
(capture/shape.py, capture/lookups.py)."""

import json
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from capture import serializers as capture_serializers
from capture.idempotency import replay_as_sent, request_fingerprint
from capture.serializers import CaptureOrderSerializer
from capture.shape import plain_request

# Numbers as the parser gives them: ints, and Decimals for fractions and exponents,
# from everyday ones to ones PostgreSQL's numeric cannot hold.
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
              st.integers(-(10**40), 10**40), st.integers(-40000, 300000)),
)  # fmt: skip
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    decimals, st.text(max_size=20),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
attributes = st.one_of(
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    json_values,
    st.just({"big": "x" * 17000}),
    st.just({"nul": "a\x00b"}),
)
pks = st.one_of(
    st.integers(min_value=-3, max_value=2**63 + 2), st.just(True), st.just("7"),
    st.just(Decimal("7.0")), st.just(Decimal("7.5")), st.none(), st.text(max_size=3),
    st.sampled_from(["١٣١٨٢", "１３２０５", "13_187", " 1118 ", "+1123", "1124.00", "-5"]),
)  # fmt: skip
item = st.one_of(
    st.fixed_dictionaries({"pk": pks}, optional={"attributes": attributes}),
    st.fixed_dictionaries({"pk": pks}, optional={"attributes": attributes, "extra": json_values}),
    json_values,
)
order_items = st.one_of(st.lists(item, max_size=6), json_values)
bodies = st.fixed_dictionaries(
    {"order": st.one_of(st.text(min_size=0, max_size=10), json_scalars)},
    optional={"order_items": order_items, "channel": st.one_of(st.integers(), json_scalars)},
)


def with_codes(errors):
    """Errors as plain data, each message with its code."""
    if isinstance(errors, dict):
        return {str(key): with_codes(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [with_codes(value) for value in errors]
    return (str(errors), errors.code)


def outcome(data, *, plain_path: bool):
    """(valid, validated data or errors with codes) through one path or the other."""
    original = capture_serializers._plain_items
    if not plain_path:
        capture_serializers._plain_items = lambda data: None
    try:
        serializer = CaptureOrderSerializer(data=data)
        if serializer.is_valid():
            return True, json.dumps(serializer.validated_data, sort_keys=True, default=str)
        return False, with_codes(serializer.errors)
    finally:
        capture_serializers._plain_items = original


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
# Refused attributes in plain items, before and among good ones (an outside test: the plain
# path listed every item where DRF's stops at the last refused one).
@example({"order": "A", "order_items": [{"pk": 1, "attributes": {"a": "\x00"}}, {"pk": 2}]})
@example(
    {
        "order": "A",
        "order_items": [
            {"pk": 1},
            {"pk": 2, "attributes": {"b": "x" * 17000}},
            {"pk": 3, "attributes": {"a": "\x00"}},
            {"pk": 4},
        ],
    }
)
def test_the_fast_path_answers_exactly_as_drf(body):
    assert outcome(body, plain_path=True) == outcome(body, plain_path=False)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=2**63 - 1), min_size=1, max_size=20, unique=True)
)
def test_distinct_positive_pks_are_always_valid(pk_list):
    serializer = CaptureOrderSerializer(
        data={"order": "ORD-1", "order_items": [{"pk": pk} for pk in pk_list]}
    )
    assert serializer.is_valid(), serializer.errors
    assert [i["pk"] for i in serializer.validated_data["order_items"]] == pk_list


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=50), min_size=2, max_size=10))
def test_a_repeated_pk_is_always_duplicate_order_items(pk_list):
    serializer = CaptureOrderSerializer(
        data={"order": "ORD-1", "order_items": [{"pk": pk} for pk in pk_list]}
    )
    valid = serializer.is_valid()
    assert valid == (len(set(pk_list)) == len(pk_list))
    if not valid:
        assert serializer.errors["order_items"][0].code == "duplicate_order_items"


def _padded(number: str) -> str:
    return number if len(number) % 3 else f" {number} "


# Bodies that validate, most of them: padded order numbers, optional attributes and
# channel, and keys validation ignores.
valid_bodies = st.fixed_dictionaries(
    {
        "order": st.text(min_size=1, max_size=8).map(_padded),
        "order_items": st.lists(
            st.fixed_dictionaries(
                {"pk": st.integers(min_value=1, max_value=2**63 - 1)},
                optional={"attributes": st.dictionaries(st.text(max_size=8), json_values,
                                                        max_size=3)},
            ),
            min_size=1, max_size=4, unique_by=lambda item: item["pk"],
        ),
    },
    optional={"channel": st.integers(min_value=1, max_value=2**63 - 1), "note": json_values},
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(bodies, valid_bodies))
def test_a_replay_skips_validation_only_for_a_body_validation_gives_back_unchanged(body):
    """capture/idempotency.py, replay_as_sent: a stored fingerprint is always of a
    validated body. A body as sent that has the validated shape and the same
    fingerprint must be that validated body: validation gives it back unchanged."""
    serializer = CaptureOrderSerializer(data=body)
    if not serializer.is_valid():
        return
    validated = serializer.validated_data
    stored = [request_fingerprint(validated), 200, "{}", True]
    # The validated body itself, sent again, replays without validation...
    assert replay_as_sent(stored, validated) is not None
    again = CaptureOrderSerializer(data=validated)
    assert again.is_valid()
    assert again.validated_data == validated
    # ...and a body as sent that takes the shortcut is the validated body.
    if replay_as_sent(stored, body) is not None:
        assert body == validated


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(bodies, valid_bodies))
@example({"order": "A-1", "order_items": [{"pk": 7, "attributes": {"w": 1}}], "channel": 2})
@example({"order": "A-1", "order_items": [{"pk": 7}, {"pk": 7}]})
@example({"order": "A-1", "order_items": [{"pk": 7, "attributes": {"nul": "a\x00"}}]})
def test_a_plain_body_names_the_order_and_items_validation_gives_back(body):
    """The authentication statement reads the order, channel and item pks of a plain
    body (capture/shape.py) before validation: validation must give back the same
    ones, or refuse only what the shape leaves to it (the items' attributes and
    duplicate pks)."""
    if not plain_request(body):
        return
    serializer = CaptureOrderSerializer(data=body)
    if not serializer.is_valid():
        assert serializer.errors.keys() == {"order_items"}
        return
    validated = serializer.validated_data
    assert validated["order"] == body["order"]
    assert validated.get("channel") == body.get("channel")
    assert [item["pk"] for item in validated["order_items"]] == [
        item["pk"] for item in body["order_items"]
    ]
