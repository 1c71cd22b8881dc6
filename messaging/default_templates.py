"""Default templates for every customer-facing event, in English, French and Arabic.

Stores edit them (or add their own per store) in admin. WhatsApp/SMS share the text; e-mail adds
a subject. The confirmation request carries Confirm / Cancel quick replies whose ids the inbound
handler understands. Placeholders are listed in messaging/events.py.
"""

BUTTONS = {
    "en": [{"id": "confirm", "title": "Confirm"}, {"id": "cancel", "title": "Cancel"}],
    "fr": [{"id": "confirm", "title": "Confirmer"}, {"id": "cancel", "title": "Annuler"}],
    "ar": [{"id": "confirm", "title": "تأكيد"}, {"id": "cancel", "title": "إلغاء"}],
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
}


# Ordered body parameters of the approved WhatsApp templates of the same name.
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
                if channel == "whatsapp" and event == "confirmation_requested":
                    extra["buttons"] = BUTTONS[language]
                MessageTemplate.objects.get_or_create(
                    store=None,
                    event=event,
                    channel=channel,
                    language=language,
                    defaults={"body": body, **extra},
                )
