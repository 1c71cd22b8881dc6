"""Default templates for every customer-facing event, in English, French and Arabic.

Stores edit them (or add their own per store) in admin. WhatsApp/SMS share the text; e-mail adds
a subject. The confirmation request and its reminder carry Confirm / Cancel quick replies, the
answer to a cancel that came too late a "call me to cancel" one; the inbound handler reads their
ids. Placeholders are listed in messaging/events.py.

In the Arabic texts added since the reminder, each placeholder sits between Unicode isolates (FSI
U+2068 … PDI U+2069, ``isolated``): an order number such as ``#1048``, an amount or a Latin name
inside right-to-left text then keeps its own direction instead of being reordered around it.
"""

import re

FSI, PDI = "\u2068", "\u2069"
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def isolated(text: str) -> str:
    """``text`` with each ``{placeholder}`` wrapped in FSI … PDI (for right-to-left templates)."""
    return _PLACEHOLDER.sub(lambda match: f"{FSI}{match.group()}{PDI}", text)


CONFIRM_OR_CANCEL = {
    "en": [{"id": "confirm", "title": "Confirm"}, {"id": "cancel", "title": "Cancel"}],
    "fr": [{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}],
    "ar": [{"id": "confirm", "title": "تأكيد"}, {"id": "cancel", "title": "إلغاء"}],
}
CALL_ME_TO_CANCEL = {
    "en": [{"id": "cancel", "title": "Call me to cancel"}],
    "fr": [{"id": "cancel", "title": "Annuler par appel"}],
    "ar": [{"id": "cancel", "title": "اتصلوا بي للإلغاء"}],
}
# The WhatsApp quick replies of each event's template, by language (at most 3, titles ≤ 20 chars).
BUTTONS = {
    "confirmation_requested": CONFIRM_OR_CANCEL,
    "confirmation_reminder": CONFIRM_OR_CANCEL,
    "reply_late_confirmed": CALL_ME_TO_CANCEL,
}

TEXTS = {
    "confirmation_requested": {
        "en": (
            "Please confirm your order {order_number}",
            "Hello {customer_name}, thank you for your order {order_number} at {store_name}: {items}. "
            "You will pay {cod_amount} on delivery. Reply 1 to confirm or 2 to cancel.",
        ),
        "fr": (
            "Merci de confirmer votre commande {order_number}",
            "Bonjour {customer_name}, merci pour votre commande {order_number} chez {store_name} : {items}. "
            "Vous paierez {cod_amount} à la livraison. Répondez 1 pour confirmer ou 2 pour annuler.",
        ),
        "ar": (
            "يرجى تأكيد طلبك {order_number}",
            "مرحبا {customer_name}، شكرا على طلبك {order_number} من {store_name}: {items}. "
            "ستدفع {cod_amount} عند الاستلام. أرسل 1 للتأكيد أو 2 للإلغاء.",
        ),
    },
    "confirmation_reminder": {
        "en": (
            "Reminder: please confirm order {order_number}",
            "Hello {customer_name}, we are still waiting for your answer about order {order_number} "
            "({cod_amount} to pay on delivery). Reply 1 to confirm or 2 to cancel: without your answer "
            "we cannot send it.",
        ),
        "fr": (
            "Rappel : merci de confirmer la commande {order_number}",
            "Bonjour {customer_name}, nous attendons toujours votre réponse pour la commande {order_number} "
            "({cod_amount} à payer à la livraison). Répondez 1 pour confirmer ou 2 pour annuler : sans "
            "votre réponse, nous ne pouvons pas l'expédier.",
        ),
        "ar": (
            isolated("تذكير: يرجى تأكيد الطلب {order_number}"),
            isolated(
                "مرحبا {customer_name}، ما زلنا ننتظر ردك بخصوص الطلب {order_number} "
                "({cod_amount} تدفعها عند الاستلام). أرسل 1 للتأكيد أو 2 للإلغاء، فبدون ردك لا يمكننا "
                "إرسال الطلب."
            ),
        ),
    },
    "order_received": {
        "en": (
            "We received your order {order_number}",
            "Hello {customer_name}, we received your order {order_number} at {store_name}. We will tell you when it ships.",
        ),
        "fr": (
            "Nous avons reçu votre commande {order_number}",
            "Bonjour {customer_name}, nous avons bien reçu votre commande {order_number} chez {store_name}. Nous vous préviendrons à l'expédition.",
        ),
        "ar": (
            "توصلنا بطلبك {order_number}",
            "مرحبا {customer_name}، توصلنا بطلبك {order_number} من {store_name}. سنخبرك عند الشحن.",
        ),
    },
    "order_confirmed": {
        "en": (
            "Order {order_number} confirmed",
            "Thank you {customer_name}, your order {order_number} is confirmed. We are preparing it.",
        ),
        "fr": (
            "Commande {order_number} confirmée",
            "Merci {customer_name}, votre commande {order_number} est confirmée. Nous la préparons.",
        ),
        "ar": (
            "تم تأكيد الطلب {order_number}",
            "شكرا {customer_name}، تم تأكيد طلبك {order_number}. نحن بصدد تجهيزه.",
        ),
    },
    "order_cancelled": {
        "en": (
            "Order {order_number} cancelled",
            "Hello {customer_name}, your order {order_number} has been cancelled. Contact {store_name} if this is a mistake.",
        ),
        "fr": (
            "Commande {order_number} annulée",
            "Bonjour {customer_name}, votre commande {order_number} a été annulée. Contactez {store_name} s'il s'agit d'une erreur.",
        ),
        "ar": (
            "تم إلغاء الطلب {order_number}",
            "مرحبا {customer_name}، تم إلغاء طلبك {order_number}. تواصل مع {store_name} إذا كان ذلك خطأ.",
        ),
    },
    "order_shipped": {
        "en": (
            "Order {order_number} shipped",
            "Good news {customer_name}: order {order_number} is on its way with {carrier}. Track it: {tracking_link}",
        ),
        "fr": (
            "Commande {order_number} expédiée",
            "Bonne nouvelle {customer_name} : la commande {order_number} est en route avec {carrier}. Suivi : {tracking_link}",
        ),
        "ar": (
            "تم شحن الطلب {order_number}",
            "خبر سار {customer_name}: طلبك {order_number} في الطريق مع {carrier}. تتبع الشحنة: {tracking_link}",
        ),
    },
    # What order_shipped falls back to while the carrier or the tracking link is unknown
    # (messaging.events.FALLBACK_EVENTS): the customer is told, without a blank where the link goes.
    "order_shipped_untracked": {
        "en": (
            "Order {order_number} shipped",
            "Good news {customer_name}: order {order_number} is on its way. We will send you the tracking link as soon as the carrier gives it.",
        ),
        "fr": (
            "Commande {order_number} expédiée",
            "Bonne nouvelle {customer_name} : la commande {order_number} est en route. Nous vous enverrons le lien de suivi dès que le transporteur nous le donne.",
        ),
        "ar": (
            isolated("تم شحن الطلب {order_number}"),
            isolated(
                "خبر سار {customer_name}: طلبك {order_number} في الطريق. سنرسل لك رابط التتبع فور توصلنا به من شركة الشحن."
            ),
        ),
    },
    "out_for_delivery": {
        "en": (
            "Order {order_number} arrives today",
            "{customer_name}, your order {order_number} is out for delivery today. Please keep {cod_amount} ready.",
        ),
        "fr": (
            "Commande {order_number} livrée aujourd'hui",
            "{customer_name}, votre commande {order_number} est en cours de livraison aujourd'hui. Merci de préparer {cod_amount}.",
        ),
        "ar": (
            "طلبك {order_number} يصل اليوم",
            "{customer_name}، طلبك {order_number} في طريقه إليك اليوم. المرجو تحضير {cod_amount}.",
        ),
    },
    "delivery_failed": {
        "en": (
            "We missed you: order {order_number}",
            "{customer_name}, the courier could not deliver order {order_number}. Reply to reschedule, change the address or return it.",
        ),
        "fr": (
            "Livraison manquée : commande {order_number}",
            "{customer_name}, le livreur n'a pas pu livrer la commande {order_number}. Répondez pour reprogrammer, changer l'adresse ou la retourner.",
        ),
        "ar": (
            "تعذر التوصيل: الطلب {order_number}",
            "{customer_name}، لم يتمكن الموزع من توصيل طلبك {order_number}. أجبنا لإعادة الجدولة أو تغيير العنوان أو الإرجاع.",
        ),
    },
    "delivery_rescheduled": {
        "en": (
            "New delivery for order {order_number}",
            "{customer_name}, order {order_number} is out for delivery again. Please keep {cod_amount} ready.",
        ),
        "fr": (
            "Nouvelle livraison : commande {order_number}",
            "{customer_name}, la commande {order_number} est de nouveau en livraison. Merci de préparer {cod_amount}.",
        ),
        "ar": (
            "موعد توصيل جديد للطلب {order_number}",
            "{customer_name}، طلبك {order_number} في طريقه إليك من جديد. المرجو تحضير {cod_amount}.",
        ),
    },
    "payment_link_offered": {
        "en": (
            "Pay order {order_number} online",
            "{customer_name}, you can also pay order {order_number} ({cod_amount}) online now: {payment_link}. "
            "The courier will then only hand it over.",
        ),
        "fr": (
            "Payer la commande {order_number} en ligne",
            "{customer_name}, vous pouvez aussi payer la commande {order_number} ({cod_amount}) en ligne : "
            "{payment_link}. Le livreur n'aura plus qu'à vous la remettre.",
        ),
        "ar": (
            "أداء ثمن الطلب {order_number} عبر الإنترنت",
            "{customer_name}، يمكنك أيضا أداء ثمن طلبك {order_number} ({cod_amount}) عبر الإنترنت: {payment_link}.",
        ),
    },
    "order_delivered": {
        "en": (
            "Order {order_number} delivered",
            "Thank you {customer_name}! Order {order_number} has been delivered. Enjoy it, from {store_name}.",
        ),
        "fr": (
            "Commande {order_number} livrée",
            "Merci {customer_name} ! La commande {order_number} a été livrée. Bonne utilisation, de la part de {store_name}.",
        ),
        "ar": (
            "تم توصيل الطلب {order_number}",
            "شكرا {customer_name}! تم توصيل طلبك {order_number}. مع تحيات {store_name}.",
        ),
    },
    "review_request": {
        "en": (
            "How was order {order_number}?",
            "Hello {customer_name}, how do you like order {order_number} from {store_name}? "
            "Reply to this message with a few words: it helps us a lot.",
        ),
        "fr": (
            "Comment s'est passée la commande {order_number} ?",
            "Bonjour {customer_name}, que pensez-vous de la commande {order_number} de {store_name} ? "
            "Répondez à ce message en quelques mots : cela nous aide beaucoup.",
        ),
        "ar": (
            "ما رأيك في الطلب {order_number}؟",
            "مرحبا {customer_name}، ما رأيك في طلبك {order_number} من {store_name}؟ "
            "أجبنا ببضع كلمات على هذه الرسالة، فهذا يساعدنا كثيرا.",
        ),
    },
    "order_refunded": {
        "en": (
            "Order {order_number} refunded",
            "Hello {customer_name}, order {order_number} has been refunded ({total_amount}).",
        ),
        "fr": (
            "Commande {order_number} remboursée",
            "Bonjour {customer_name}, la commande {order_number} a été remboursée ({total_amount}).",
        ),
        "ar": (
            "تم استرجاع مبلغ الطلب {order_number}",
            "مرحبا {customer_name}، تم استرجاع مبلغ طلبك {order_number} ({total_amount}).",
        ),
    },
    "reply_received": {
        "en": (
            "We got your message",
            "Thank you {customer_name}, we got your message. Someone from {store_name} will get back "
            "to you soon.",
        ),
        "fr": (
            "Nous avons bien reçu votre message",
            "Merci {customer_name}, nous avons bien reçu votre message. Quelqu'un de {store_name} vous "
            "répondra très bientôt.",
        ),
        "ar": (
            "توصلنا برسالتك",
            isolated("شكرا {customer_name}، توصلنا برسالتك. سيتواصل معك أحد من {store_name} قريبا."),
        ),
    },
    "reply_already_confirmed": {
        "en": (
            "Order {order_number} is already confirmed",
            "Thank you {customer_name}, your order {order_number} is already confirmed: there is nothing "
            "more to do. We will keep you posted.",
        ),
        "fr": (
            "La commande {order_number} est déjà confirmée",
            "Merci {customer_name}, votre commande {order_number} est déjà confirmée : vous n'avez rien "
            "d'autre à faire. Nous vous tiendrons au courant.",
        ),
        "ar": (
            isolated("الطلب {order_number} مؤكد من قبل"),
            isolated(
                "شكرا {customer_name}، طلبك {order_number} مؤكد من قبل، فلا حاجة لأي شيء آخر. "
                "سنبقيك على اطلاع."
            ),
        ),
    },
    "reply_late_confirmed": {
        "en": (
            "Order {order_number} is already confirmed",
            "Hello {customer_name}, your order {order_number} is already confirmed, so it can no longer "
            "be cancelled by message. Reply 2 if you want someone to call you to cancel it.",
        ),
        "fr": (
            "La commande {order_number} est déjà confirmée",
            "Bonjour {customer_name}, votre commande {order_number} est déjà confirmée : elle ne peut "
            "plus être annulée par message. Répondez 2 si vous voulez qu'on vous appelle pour l'annuler.",
        ),
        "ar": (
            isolated("الطلب {order_number} مؤكد من قبل"),
            isolated(
                "مرحبا {customer_name}، طلبك {order_number} مؤكد من قبل، ولم يعد ممكنا إلغاؤه برسالة. "
                "أرسل 2 إذا أردت أن نتصل بك لإلغائه."
            ),
        ),
    },
    "reply_late_cancelled": {
        "en": (
            "Order {order_number} was cancelled",
            "Hello {customer_name}, your order {order_number} was cancelled. If you still want it, "
            "please place a new order at {store_name}, or reply to this message to talk to us.",
        ),
        "fr": (
            "La commande {order_number} a été annulée",
            "Bonjour {customer_name}, votre commande {order_number} a été annulée. Si vous la voulez "
            "toujours, passez une nouvelle commande chez {store_name}, ou répondez à ce message pour "
            "nous parler.",
        ),
        "ar": (
            isolated("تم إلغاء الطلب {order_number}"),
            isolated(
                "مرحبا {customer_name}، تم إلغاء طلبك {order_number}. إذا كنت لا تزال تريده، قدّم طلبا "
                "جديدا من {store_name}، أو أجب على هذه الرسالة للتحدث معنا."
            ),
        ),
    },
}


def install_default_templates(MessageTemplate=None) -> None:
    """Create the defaults that are missing; never overwrites what a store edited."""
    if MessageTemplate is None:
        from messaging.models import MessageTemplate
    for event, by_language in TEXTS.items():
        for language, (subject, body) in by_language.items():
            for channel in ("whatsapp", "sms", "email"):
                extra = {}
                if channel == "email":
                    extra["subject"] = subject
                if channel == "whatsapp" and event in BUTTONS:
                    extra["buttons"] = BUTTONS[event][language]
                MessageTemplate.objects.get_or_create(
                    store=None,
                    event=event,
                    channel=channel,
                    language=language,
                    defaults={"body": body, **extra},
                )
