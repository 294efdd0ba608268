from django.core.management.base import BaseCommand

from checkout.models import Product

DEMO_PRODUCTS = [
    ("green-tea", "Longjing green tea, 100 g", "First-flush tea from West Lake, Hangzhou.", 1999),
    ("mooncake-box", "Mooncake gift box", "Four lotus-seed mooncakes in a lacquered box.", 8800),
    ("silk-scarf", "Suzhou silk scarf", "Hand-rolled edges, 90 x 90 cm.", 26800),
    ("teapot", "Yixing clay teapot", "Purple clay, 200 ml, for oolong and pu'er.", 45900),
]


class Command(BaseCommand):
    help = "Seed the demo catalogue (idempotent: updates what is there)."

    def handle(self, *args, **options) -> None:
        for slug, name, description, price in DEMO_PRODUCTS:
            Product.objects.update_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "description": description,
                    "price": price,
                    "currency": "CNY",
                },
            )
        self.stdout.write(f"Demo catalogue: {len(DEMO_PRODUCTS)} products.")
