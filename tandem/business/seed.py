"""Load the demo business (data/demo/*.csv) into the database.

Dates in the CSV files are relative ("placed 3 days ago", "booking in 2 days") and are
turned into timestamps at seeding time, so the demo stays plausible on any date.
Seeding is idempotent: it does nothing when customers or products already exist,
unless `force` wipes the business tables first.

    python -m tandem.business.seed [--force] [--data-dir data/demo]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tandem.business.models import (
    Booking,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductVariant,
    ReturnKind,
    ReturnRequest,
    ReturnStatus,
)
from tandem.business.profile import BusinessProfile, get_profile
from tandem.config import PROJECT_ROOT
from tandem.db import utcnow

DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "demo"
Row = dict[str, str]
T = TypeVar("T")
# wraps an iterable to show progress; the identity when nobody is watching
Track = Callable[[Iterable[T], str], Iterable[T]]


@dataclass
class SeedReport:
    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def _no_progress(rows: Iterable[T], _label: str) -> Iterable[T]:
    return rows


def read_rows(data_dir: Path, name: str) -> list[Row]:
    with (data_dir / name).open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def has_business_data(session: Session) -> bool:
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    products = session.scalar(select(func.count()).select_from(Product)) or 0
    return customers + products > 0


def wipe_business_data(session: Session) -> None:
    # children first, so foreign keys hold on every backend
    for model in (ReturnRequest, OrderItem, Order, Booking, ProductVariant, Product, Customer):
        session.execute(delete(model))
    session.flush()


def seed_demo(
    session: Session,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    *,
    profile: BusinessProfile | None = None,
    now: datetime | None = None,
    force: bool = False,
    track: Track = _no_progress,  # type: ignore[assignment]
) -> SeedReport:
    """Load the demo data; a no-op when business data exists and `force` is false."""
    if has_business_data(session) and not force:
        return SeedReport(skipped=True)
    if force:
        wipe_business_data(session)
    data_dir = Path(data_dir)
    profile = profile or get_profile()
    seeder = _Seeder(session, profile, now or utcnow())
    report = SeedReport()
    report.counts["products"] = seeder.products(
        track(read_rows(data_dir, "products.csv"), "products"),
        read_rows(data_dir, "product_variants.csv"),
    )
    report.counts["customers"] = seeder.customers(
        track(read_rows(data_dir, "customers.csv"), "customers")
    )
    report.counts["orders"] = seeder.orders(
        track(read_rows(data_dir, "orders.csv"), "orders"),
        read_rows(data_dir, "order_items.csv"),
    )
    report.counts["bookings"] = seeder.bookings(
        track(read_rows(data_dir, "bookings.csv"), "bookings")
    )
    session.flush()
    return report


class _Seeder:
    def __init__(self, session: Session, profile: BusinessProfile, now: datetime) -> None:
        self.session = session
        self.profile = profile
        self.now = now
        self.today = profile.local_now(now).date()
        self.products_by_sku: dict[str, Product] = {}
        self.customers_by_email: dict[str, Customer] = {}

    # relative day + local clock time -> aware UTC moment
    def _moment(self, days_ago: int, local_time: time) -> datetime:
        moment = datetime.combine(
            self.today - timedelta(days=days_ago), local_time, self.profile.tz
        )
        # never in the future: "placed today at 4 PM" seeded at 9 AM becomes "just now"
        return min(moment, self.now - timedelta(minutes=5))

    def products(self, rows: Iterable[Row], variant_rows: list[Row]) -> int:
        count = 0
        for row in rows:
            product = Product(
                sku=row["sku"],
                name=row["name"],
                category=row["category"],
                price=Decimal(row["price"]),
                colours=[c.strip() for c in row["colours"].split("|") if c.strip()],
                description=row.get("description", ""),
            )
            self.session.add(product)
            self.products_by_sku[product.sku] = product
            count += 1
        for position, row in enumerate(variant_rows):
            product = self.products_by_sku[row["sku"]]
            product.variants.append(
                ProductVariant(size=row["size"], stock=int(row["stock"]), position=position)
            )
        self.session.flush()
        return count

    def customers(self, rows: Iterable[Row]) -> int:
        count = 0
        for row in rows:
            customer = Customer(
                name=row["name"],
                email=row["email"].lower(),
                phone=row["phone"] or None,
                tier=row["tier"],
                lifetime_value=Decimal(row["lifetime_value"]),
                created_at=self._moment(int(row.get("joined_days_ago") or 0), time(12, 0)),
            )
            self.session.add(customer)
            self.customers_by_email[customer.email] = customer
            count += 1
        self.session.flush()
        return count

    def _shipping_cost(self, method: str, subtotal: Decimal) -> Decimal:
        option = next((o for o in self.profile.shipping.options if o.name == method), None)
        if option is None:
            return Decimal("0.00")
        if option.free_over is not None and subtotal >= option.free_over:
            return Decimal("0.00")
        return option.cost

    def orders(self, rows: Iterable[Row], item_rows: list[Row]) -> int:
        items_by_order: dict[str, list[Row]] = {}
        for item in item_rows:
            items_by_order.setdefault(item["order_number"], []).append(item)
        count = 0
        for row in rows:
            number = row["number"]
            seed = int(number)  # varies clock times per order, deterministically
            order = Order(
                number=number,
                customer=self.customers_by_email[row["customer_email"].lower()],
                status=OrderStatus(row["status"]).value,
                shipping_method=row["shipping_method"] or None,
                carrier=row["carrier"] or None,
                tracking_number=row["tracking_number"] or None,
                placed_at=self._moment(
                    int(row["placed_days_ago"]), time(9 + seed % 11, seed * 7 % 60)
                ),
                total=Decimal("0.00"),
            )
            if row["shipped_days_ago"]:
                order.shipped_at = self._moment(int(row["shipped_days_ago"]), time(16, seed % 60))
            if row["delivered_days_ago"]:
                delivered_days = int(row["delivered_days_ago"])
                order.delivered_at = self._moment(delivered_days, time(13 + seed % 5, seed % 60))
                order.expected_delivery = self.today - timedelta(days=delivered_days)
            elif row["expected_in_days"]:
                order.expected_delivery = self.today + timedelta(days=int(row["expected_in_days"]))
            if row["cancelled_days_ago"]:
                order.cancelled_at = self._moment(
                    int(row["cancelled_days_ago"]), time(10, seed % 60)
                )
            subtotal = Decimal("0.00")
            for item in items_by_order.get(number, []):
                product = self.products_by_sku[item["sku"]]
                quantity = int(item["quantity"])
                order.items.append(
                    OrderItem(
                        product_id=product.id,
                        product_name=product.name,
                        size=item["size"] or None,
                        quantity=quantity,
                        unit_price=product.price,
                    )
                )
                subtotal += product.price * quantity
            order.shipping_cost = self._shipping_cost(order.shipping_method or "", subtotal)
            order.total = subtotal + order.shipping_cost
            if order.status == OrderStatus.RETURNED:
                order.return_requests.append(
                    ReturnRequest(
                        kind=ReturnKind.RETURN.value,
                        status=ReturnStatus.COMPLETED.value,
                        created_at=order.delivered_at or order.placed_at,
                    )
                )
            self.session.add(order)
            count += 1
        self.session.flush()
        return count

    def _open_day_near(self, day: date, forward: bool) -> date:
        """Seed bookings must fall on open days whatever the seeding date."""
        step = timedelta(days=1 if forward else -1)
        for _ in range(14):
            if self.profile.hours_on(day).is_open:
                return day
            day += step
        return day

    def bookings(self, rows: Iterable[Row]) -> int:
        duration = self.profile.appointments.duration_minutes
        count = 0
        for row in rows:
            in_days = int(row["in_days"])
            day = self._open_day_near(self.today + timedelta(days=in_days), forward=in_days >= 0)
            hours = self.profile.hours_on(day).hours
            wanted = time.fromisoformat(row["local_time"])
            if hours is not None:
                latest = (datetime.combine(day, hours.closes) - timedelta(minutes=duration)).time()
                wanted = min(max(wanted, hours.opens), latest)
            starts_at = datetime.combine(day, wanted, self.profile.tz)
            self.session.add(
                Booking(
                    ref=row["ref"].upper(),
                    customer_name=row["customer_name"],
                    phone=row["phone"],
                    starts_at=starts_at,
                    duration_minutes=duration,
                    status=row["status"],
                    created_at=min(self.now, starts_at) - timedelta(days=3),
                    updated_at=min(self.now, starts_at) - timedelta(days=3),
                )
            )
            count += 1
        self.session.flush()
        return count


# ------------------------------------------------------------------------------ CLI


def _rich_track(rows: Iterable[T], label: str) -> Iterator[T]:
    from rich.progress import track

    materialised = list(rows)
    yield from track(materialised, description=f"Seeding {label:<10}", total=len(materialised))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Load the demo business into the database.")
    parser.add_argument("--force", action="store_true", help="wipe business tables and re-seed")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--database-url", help="defaults to DATABASE_URL")
    args = parser.parse_args(argv)

    from tandem.db import get_engine, migrate, session_scope

    engine = get_engine(args.database_url)
    # the schema belongs to Alembic; create_all only while no migrations exist yet
    if (PROJECT_ROOT / "tandem" / "migrations" / "env.py").exists():
        migrate(args.database_url)
    else:
        from tandem.db import Base

        Base.metadata.create_all(engine)
    with session_scope(engine) as session:
        report = seed_demo(session, args.data_dir, force=args.force, track=_rich_track)
    if report.skipped:
        print("Business data already present; nothing done (use --force to re-seed).")
    else:
        print("Seeded " + ", ".join(f"{n} {name}" for name, n in report.counts.items()) + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
