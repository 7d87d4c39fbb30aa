"""The capture rules and limits as data (statuses, sizes, the Idempotency-Key's, a
page's): read by the code, quoted by docs/api.md and the schema."""

from orders.enums import OrderStatus

# An order can be captured only in these statuses (Omnitron's capturable states).
CAPTURABLE_ORDER_STATUSES = frozenset(
    {
        OrderStatus.APPROVED,
        OrderStatus.PREPARING,
        OrderStatus.SHIPPED,
        OrderStatus.SHIPPED_AND_INFORMED,
        OrderStatus.READY_FOR_PICKUP,
        OrderStatus.ATTEMPTED_DELIVERY,
        OrderStatus.DELIVERED,
    }
)

# An item in one of these statuses is never captured, whatever its order's status.
NON_CAPTURABLE_ITEM_STATUSES = frozenset(
    {OrderStatus.CANCELLATION_WAITING, OrderStatus.CANCELED, OrderStatus.REFUNDED}
)

MAX_ITEMS_PER_CAPTURE = 1000
# The most captured items a page of the captures list holds (fewer captures then),
# and the most characters of their attributes (before and after): 5,000 items of 16 KB
# attributes made an 82 MB page that held a worker for seconds and 650 MB.
MAX_PAGE_ITEMS = 5000
MAX_PAGE_ATTRIBUTE_CHARACTERS = 2_000_000
# The most captured items one CSV export holds: 4 to 8 s to stream alone on a 2-core
# machine (980,000 took 15 s, and five at once ran past gunicorn's 30 s timeout, cut
# short into files that looked whole).
MAX_EXPORT_ROWS = 250_000
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_ATTRIBUTES_DEPTH = 32
MAX_IDEMPOTENCY_KEY_LENGTH = 255
IDEMPOTENCY_KEY_TTL_HOURS = 24
