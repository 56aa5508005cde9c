"""Product questions: price, colours and stock by size."""

from __future__ import annotations

import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import business_service, entity_values, latest_text, reset_slots, text_of
from tandem.business.service import normalise_size

LOW_STOCK = 3
# "in small", "size 8", "in a medium": a size said without the NLU tagging it
_SIZE_IN_TEXT = re.compile(
    r"\b(?:size|in an?|in)\s+"
    r"(extra\s+small|extra\s+large|x?s|m|x?l|xxl|small|medium|large|\d{1,2}(?:\.5)?)\b",
    re.IGNORECASE,
)


def wanted_size(tracker: Tracker) -> str | None:
    for candidate in [*entity_values(tracker, "size"), text_of(tracker.get_slot("size"))]:
        if size := normalise_size(candidate):
            return size
    match = _SIZE_IN_TEXT.search(latest_text(tracker))
    return normalise_size(match.group(1)) if match else None


class ActionProductInfo(Action):
    def name(self) -> str:
        return "action_product_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events = reset_slots("product", "size")
        queries = [*entity_values(tracker, "product"), text_of(tracker.get_slot("product"))]
        queries = [q for q in queries if q]
        with business_service() as service:
            p = service.profile
            product = next((m for q in queries if (m := service.find_product(q))), None)
            if product is None and not queries:
                # no entity: try the whole sentence, more strictly
                matches = service.find_products(latest_text(tracker), limit=1, cutoff=75)
                product = matches[0].product if matches else None
            if product is None:
                if queries:
                    dispatcher.utter_message(
                        text=p.say(
                            "product_not_found",
                            query=queries[0],
                            categories=p.join(c.lower() for c in service.categories()),
                        )
                    )
                else:
                    dispatcher.utter_message(text=p.say("product_ask_which"))
                return events
            sentences = [
                p.say(
                    "product_summary",
                    name=product.name,
                    price=p.money(product.price),
                    colours=p.join(product.colours, "or"),
                )
            ]
            size = wanted_size(tracker)
            stock = service.availability(product)
            if size is not None:
                found = service.stock_for_size(product, size)
                if found is None:
                    sentences.append(
                        p.say(
                            "product_size_unknown",
                            name=product.name,
                            size=size,
                            sizes=p.join([s.size for s in stock]),
                        )
                    )
                elif found.stock == 0:
                    sentences.append(
                        p.say("product_size_sold_out", name=product.name, size=found.size)
                    )
                elif found.stock <= LOW_STOCK:
                    sentences.append(
                        p.say(
                            "product_size_low_stock",
                            name=product.name,
                            size=found.size,
                            stock=found.stock,
                        )
                    )
                else:
                    sentences.append(
                        p.say("product_size_in_stock", name=product.name, size=found.size)
                    )
            else:
                in_stock = [s.size for s in stock if s.stock > 0]
                sold_out = [s.size for s in stock if s.stock == 0]
                if not in_stock:
                    sentences.append(p.say("product_all_sold_out"))
                else:
                    sentences.append(p.say("product_in_stock_sizes", sizes=p.join(in_stock)))
                    if sold_out:
                        sentences.append(p.say("product_sold_out_sizes", sizes=p.join(sold_out)))
            dispatcher.utter_message(text=" ".join(sentences))
        return events
