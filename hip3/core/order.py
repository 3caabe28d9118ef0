"""Order vocabulary: side, time in force, client order id."""

from __future__ import annotations

import enum
import re
import secrets

import attrs


class Side(enum.Enum):
    BUY = "B"
    SELL = "A"

    @property
    def is_buy(self) -> bool:
        return self is Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign a fill of this side gives a position's size."""
        return 1 if self is Side.BUY else -1

    @property
    def label(self) -> str:
        """ "buy" or "sell": how logs, records, metrics and the dashboard name it."""
        return "buy" if self is Side.BUY else "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @classmethod
    def from_wire(cls, value: str) -> Side:
        """Parse the exchange's side letter: "B" (bid, buy) or "A" (ask, sell)."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"side must be 'B' or 'A', got {value!r}") from None

    @classmethod
    def from_is_buy(cls, is_buy: bool) -> Side:
        return cls.BUY if is_buy else cls.SELL


class Tif(enum.Enum):
    """Time in force of a limit order, spelled as on the wire."""

    GTC = "Gtc"
    IOC = "Ioc"
    ALO = "Alo"


class CloidError(ValueError):
    """A client order id that is not `0x` followed by 32 hex digits."""


_CLOID_RE = re.compile(r"0x[0-9a-fA-F]{32}")


@attrs.frozen(slots=True)
class Cloid:
    """Client order id: 128 bits written as `0x` + 32 lower-case hex digits."""

    value: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.value, str) or not _CLOID_RE.fullmatch(self.value):
            raise CloidError(f"cloid must be '0x' followed by 32 hex digits, got {self.value!r}")
        if self.value != self.value.lower():
            raise CloidError(f"cloid must be lower-case, got {self.value!r} (use Cloid.parse to normalise)")

    @classmethod
    def new(cls) -> Cloid:
        return cls("0x" + secrets.token_hex(16))

    @classmethod
    def parse(cls, text: str) -> Cloid:
        """Validate a cloid from outside (config, exchange frames), normalising hex case."""
        if not isinstance(text, str) or not _CLOID_RE.fullmatch(text):
            raise CloidError(f"cloid must be '0x' followed by 32 hex digits, got {text!r}")
        return cls(text.lower())

    @classmethod
    def from_int(cls, number: int) -> Cloid:
        if not 0 <= number < 1 << 128:
            raise CloidError(f"cloid integer must be in [0, 2**128), got {number}")
        return cls(f"0x{number:032x}")

    def __str__(self) -> str:
        return self.value
