"""Product questions: price, colours, stock by size, and searches by attributes.

The product and size asked about stay in their slots, so a follow-up such as "how much
is it", "in a medium?" or "and the black one?" is about the same product.
"""

from __future__ import annotations

import re
from decimal import Decimal

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import business_service, entity_values, latest_text, text_of
from tandem.business.models import Product
from tandem.business.profile import BusinessProfile
from tandem.business.service import BusinessService, normalise_size

LOW_STOCK = 3
# "in small", "size 8", "in a medium": a size said without the NLU tagging it
_SIZE_IN_TEXT = re.compile(
    r"\b(?:size|in an?|in)\s+"
    r"(extra\s+small|extra\s+large|x?s|m|x?l|xxl|small|medium|large|\d{1,2}(?:\.5)?)\b",
    re.IGNORECASE,
)
_MAX_PRICE = re.compile(r"\b(?:under|below|less than|max|up to|cheaper than)\s*\$?(\d+)", re.I)
_MIN_PRICE = re.compile(r"\b(?:over|above|more than|at least)\s*\$?(\d+)", re.I)


def wanted_size(tracker: Tracker, carry: bool = True) -> str | None:
    """The size named now, else (with `carry`) the one asked about before."""
    for candidate in entity_values(tracker, "size"):
        if size := normalise_size(candidate):
            return size
    match = _SIZE_IN_TEXT.search(latest_text(tracker))
    if match and (size := normalise_size(match.group(1))):
        return size
    return normalise_size(text_of(tracker.get_slot("size"))) if carry else None


def _price(pattern: re.Pattern[str], text: str) -> Decimal | None:
    match = pattern.search(text)
    return Decimal(match.group(1)) if match else None


# everyday colour words, to notice a colour a product does not come in
_COLOUR_WORDS = re.compile(
    r"\b(black|white|navy|blue|red|green|pink|gr[ae]y|brown|beige|cream|ivory|yellow|orange|"
    r"purple|tan|camel|olive|burgundy|khaki|silver|gold)\b",
    re.IGNORECASE,
)


def colour_sentence(p: BusinessProfile, product: Product, text: str) -> str | None:
    """Whether `product` comes in the colour named in the text, if one is named."""
    lowered = text.lower()
    for colour in sorted(product.colours, key=len, reverse=True):
        if re.search(rf"\b{re.escape(colour.lower())}\b", lowered):
            return p.say(
                "product_colour", name=product.name, colour=colour, price=p.money(product.price)
            )
    word = _COLOUR_WORDS.search(text)
    if word is None:
        return None
    return p.say(
        "product_colour_missing",
        name=product.name,
        colour=word.group(1).lower(),
        colours=p.join(product.colours, "or"),
    )


def size_sentence(p: BusinessProfile, service: BusinessService, product: Product, size: str) -> str:
    stock = service.availability(product)
    found = service.stock_for_size(product, size)
    if found is None:
        return p.say(
            "product_size_unknown",
            name=product.name,
            size=size,
            sizes=p.join([s.size for s in stock]),
        )
    if found.stock == 0:
        return p.say("product_size_sold_out", name=product.name, size=found.size)
    if found.stock <= LOW_STOCK:
        return p.say(
            "product_size_low_stock", name=product.name, size=found.size, stock=found.stock
        )
    return p.say("product_size_in_stock", name=product.name, size=found.size)


def stock_sentences(p: BusinessProfile, service: BusinessService, product: Product) -> list[str]:
    stock = service.availability(product)
    in_stock = [s.size for s in stock if s.stock > 0]
    sold_out = [s.size for s in stock if s.stock == 0]
    if not in_stock:
        return [p.say("product_all_sold_out")]
    if len(stock) == 1:  # "In stock in sizes One Size" reads badly
        return [p.say("product_in_stock_one_size")]
    sentences = [p.say("product_in_stock_sizes", sizes=p.join(in_stock))]
    if sold_out:
        sentences.append(p.say("product_sold_out_sizes", sizes=p.join(sold_out)))
    return sentences


def search_lines(
    p: BusinessProfile, service: BusinessService, products: list[Product], size: str | None
) -> list[str]:
    """One line per product with its stock (in the size asked about, if any)."""
    lines = []
    for product in products:
        if size is not None:
            found = service.stock_for_size(product, size)
            if found is None:
                continue  # not made in that size
            stock = (
                p.say("product_search_in_size", stock=found.stock, size=found.size)
                if found.stock
                else p.say("product_search_sold_out_in_size", size=found.size)
            )
        else:
            available = [s.size for s in service.availability(product) if s.stock > 0]
            stock = (
                p.say("product_search_sizes", sizes=p.join(available))
                if available
                else p.say("product_all_sold_out")
            )
        lines.append(
            p.say(
                "product_search_line", name=product.name, price=p.money(product.price), stock=stock
            )
        )
    return lines


class ActionProductInfo(Action):
    def name(self) -> str:
        return "action_product_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = latest_text(tracker)
        named = entity_values(tracker, "product")
        size = wanted_size(tracker, carry=not named)
        with business_service() as service:
            p = service.profile
            # "any dresses in M under $150": a category or a price range lists every match
            category = next((c for q in named if (c := service.category_named(q))), None)
            if category is None and not named:
                category = service.category_named(text)
            low, high = _price(_MIN_PRICE, text), _price(_MAX_PRICE, text)
            if category is not None or low is not None or high is not None:
                products = service.search_products(category, low, high)
                lines = search_lines(p, service, products, size)
                if lines:
                    intro = p.say("product_search_intro", count=len(lines))
                    dispatcher.utter_message(text="\n".join([intro, *lines]))
                else:
                    dispatcher.utter_message(text=p.say("product_search_none"))
                return [SlotSet("size", size)]
            # one product: named now, else the one asked about before
            queries = named or [text_of(tracker.get_slot("product"))]
            queries = [q for q in queries if q]
            product = next((m for q in queries if (m := service.find_product(q))), None)
            if product is None and not queries:
                # no entity and no context: try the whole sentence, more strictly
                matches = service.find_products(text, limit=1, cutoff=75)
                product = matches[0].product if matches else None
            if product is None:
                if named:
                    dispatcher.utter_message(
                        text=p.say(
                            "product_not_found",
                            query=named[0],
                            categories=p.join(c.lower() for c in service.categories()),
                        )
                    )
                else:
                    dispatcher.utter_message(text=p.say("product_ask_which"))
                return [SlotSet("product", None), SlotSet("size", None)]
            sentences = [
                p.say(
                    "product_summary",
                    name=product.name,
                    price=p.money(product.price),
                    colours=p.join(product.colours, "or"),
                )
            ]
            colour = colour_sentence(p, product, text)
            if colour:
                sentences = [colour]
            if size is not None:
                sentences.append(size_sentence(p, service, product, size))
            else:
                sentences += stock_sentences(p, service, product)
            dispatcher.utter_message(text=" ".join(sentences))
            return [SlotSet("product", product.name), SlotSet("size", size)]
