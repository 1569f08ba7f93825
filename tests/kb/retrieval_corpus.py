"""A small labelled corpus for the retrieval test: passages and questions with their answer.

Several passages are near-twins that differ only by a code or a product name (error codes, model
numbers), the case where keyword search has to rescue a dense model.
"""

from __future__ import annotations

_ERRORS = [
    ("4471", "the cooling fan has stopped", "replace the fan module"),
    ("4417", "the intake filter is clogged", "clean the filter"),
    ("4741", "the firmware checksum failed", "reflash the firmware"),
    ("7144", "the door sensor is disconnected", "reseat the sensor cable"),
    ("1447", "the battery backup is depleted", "swap the backup battery"),
    ("4714", "the temperature probe reads out of range", "recalibrate the probe"),
    ("1744", "the network card lost its link", "check the network cable"),
    ("7414", "the fuse on the power board blew", "replace the fuse"),
    ("4147", "the pressure relief valve is stuck", "free the relief valve"),
    ("7441", "the display backlight failed", "replace the display panel"),
]
_PUMPS = [
    ("HX-200", 40, "stainless steel"),
    ("HX-220", 55, "bronze"),
    ("HX-250", 70, "ceramic"),
    ("HX-205", 45, "cast iron"),
    ("HX-225", 60, "titanium"),
    ("HX-255", 75, "composite"),
    ("HX-202", 42, "brass"),
]
_ROUTERS = [
    ("X2", "Wi-Fi 6", "four gigabit ports"),
    ("X3", "Wi-Fi 6E", "eight gigabit ports"),
    ("X5", "Wi-Fi 7", "two ten-gigabit ports"),
    ("X4", "Wi-Fi 6", "six gigabit ports"),
    ("X6", "Wi-Fi 7", "four ten-gigabit ports"),
    ("X1", "Wi-Fi 5", "two gigabit ports"),
]
_PARTS = [
    ("88213", "power supply"),
    ("88231", "toner cartridge"),
    ("82813", "paper tray"),
    ("88123", "fuser unit"),
    ("81823", "drum kit"),
    ("83218", "network module"),
]

PASSAGES: dict[str, str] = {
    **{
        f"err-{code}": f"Error code ERR-{code} on the controller display means {meaning}. "
        f"Power the unit down and {fix}."
        for code, meaning, fix in _ERRORS
    },
    **{
        name.lower(): f"The {name} pump is rated for {rate} litres per minute and ships with a "
        f"{material} impeller."
        for name, rate, material in _PUMPS
    },
    **{
        f"zephyr-{model.lower()}": f"The Zephyr {model} router supports {wifi} and has {ports}."
        for model, wifi, ports in _ROUTERS
    },
    **{
        f"sku-{number}": f"Part number SKU-{number} is the replacement {part} for the lab printers."
        for number, part in _PARTS
    },
    "kestrel": "Kestrel is the codename of our mobile banking app, released in March.",
    "osprey": "Osprey is the codename of our desktop trading terminal, released in June.",
    "merlin": "Merlin is the codename of our fraud detection service, released in October.",
    "sku-88213": "Part number SKU-88213 is the replacement power supply for the lab printers.",
    "sku-88231": "Part number SKU-88231 is the replacement toner cartridge for the lab printers.",
    "sku-82813": "Part number SKU-82813 is the replacement paper tray for the lab printers.",
    "holidays": "Full-time employees receive twenty-five days of paid annual leave, plus public "
    "holidays.",
    "sick-leave": "If you are ill, tell your manager before ten in the morning; a doctor's note "
    "is needed after three days.",
    "parental": "Parents can take up to sixteen weeks of paid parental leave within the first "
    "year after a birth or adoption.",
    "remote": "Staff may work from home up to three days a week with their team lead's agreement.",
    "expenses": "Travel expenses must be submitted within thirty days with the original "
    "receipts attached.",
    "security-badge": "Lost security badges must be reported to the front desk immediately so "
    "they can be deactivated.",
    "passwords": "Passwords must be at least fourteen characters long and are rotated once a year.",
    "vpn": "To reach internal systems from outside the office, connect to the company VPN first.",
    "onboarding": "New hires spend their first week shadowing a buddy from their team.",
    "coffee": "The coffee machine on the second floor is descaled every Friday afternoon.",
    "parking": "The car park opens at seven and visitors must register their number plate at "
    "reception.",
    "fire-drill": "Fire drills take place twice a year; assemble at the meeting point by the "
    "north gate.",
    "recycling": "Paper, glass and plastic go into separate recycling bins in the kitchen.",
    "invoices": "Invoices are issued on the first working day of each month and are due within "
    "fourteen days.",
    "refunds": "Customers can ask for a refund within thirty days of purchase if the product is "
    "unused.",
    "shipping": "Orders placed before two in the afternoon ship the same day by courier.",
    "warranty": "All hardware comes with a two-year warranty covering manufacturing defects.",
    "support-hours": "The support desk answers calls from eight in the morning to six in the "
    "evening on weekdays.",
    "backup": "Database backups run every night at one and are kept for ninety days.",
    "incident": "During a major incident, the on-call engineer opens a bridge call and posts "
    "updates every thirty minutes.",
    "deploy": "Production deployments are frozen from the fifteenth of December to the second "
    "of January.",
    "code-review": "Every pull request needs approval from at least one other engineer before "
    "it is merged.",
    "python-version": "Our services run on Python 3.11; upgrading to a newer version needs a "
    "platform ticket.",
}

# (question, id of the passage that answers it, whether it hinges on an exact keyword)
QUESTIONS: list[tuple[str, str, bool]] = [
    ("What does ERR-4471 mean?", "err-4471", True),
    ("How do I fix ERR-4741?", "err-4741", True),
    ("The display shows ERR-7144, what should I do?", "err-7144", True),
    ("ERR-1447 meaning", "err-1447", True),
    ("How many litres per minute does the HX-220 move?", "hx-220", True),
    ("Which impeller does the HX-250 have?", "hx-250", True),
    ("How many ports does the Zephyr X3 have?", "zephyr-x3", True),
    ("Which Wi-Fi standard does the Zephyr X5 support?", "zephyr-x5", True),
    ("What is SKU-88231?", "sku-88231", True),
    ("What is Osprey?", "osprey", True),
    ("How much paid vacation do employees get?", "holidays", False),
    ("What should I do when I am sick?", "sick-leave", False),
    ("How long is parental leave?", "parental", False),
    ("Can I work from home?", "remote", False),
    ("When must I file my travel costs?", "expenses", False),
    ("I lost my access card, what now?", "security-badge", False),
    ("How long do passwords need to be?", "passwords", False),
    ("When are customers billed?", "invoices", False),
    ("How long do we keep database backups?", "backup", False),
    ("When can we not deploy to production?", "deploy", False),
    ("Where do we gather during a fire alarm?", "fire-drill", False),
    ("What warranty does hardware have?", "warranty", False),
]
