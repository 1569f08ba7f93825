"""A labelled corpus for retrieval evaluation: about two hundred passages and the questions
they answer.

The passages cover what a company knowledge base holds (HR policy, product documentation,
runbooks, error codes, API references, release notes, settings). Many come in families of
near-twins that differ only by a code, a version or a name (ERR-4471 next to ERR-4417, release
4.2.1 next to 4.2.2), the case where keyword search has to rescue a dense model; the written
passages are the case where only the meaning matches. `python -m tests.kb.retrieval_corpus DIR`
writes the set as `passages/*.txt` plus `questions.jsonl` for `mai ingest` and `mai kb eval`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

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

_PAYMENT_ERRORS = [
    ("PAY-3021", "the card issuer declined the charge", "ask the customer for another card"),
    ("PAY-3012", "the card has expired", "ask the customer to update the expiry date"),
    ("PAY-3201", "the 3-D Secure challenge timed out", "send the payment link again"),
    (
        "PAY-3102",
        "the currency is not enabled for the merchant",
        "enable it in the billing console",
    ),
    ("PAY-2031", "the refund exceeds the captured amount", "refund at most the captured amount"),
    ("PAY-2301", "the idempotency key was reused with a different body", "use a new key"),
    ("PAY-1203", "the webhook signature did not verify", "rotate the signing secret"),
    ("PAY-1320", "the merchant account is suspended", "contact the risk team"),
]
_RELEASES = [
    ("4.2.0", "adds single sign-on with SAML and a dark theme for the dashboard"),
    ("4.2.1", "fixes a crash when exporting reports with more than a million rows"),
    ("4.2.2", "fixes the time zone of scheduled e-mails sent around daylight saving changes"),
    ("4.3.0", "adds audit log export to S3 and drops support for Internet Explorer"),
    ("4.3.1", "patches CVE-2026-31337, a path traversal in the attachment download endpoint"),
    ("4.4.0", "adds webhooks for invoice events and raises the API rate limit to 600 per minute"),
    ("4.4.1", "fixes duplicated push notifications on Android 15"),
    ("5.0.0", "removes the deprecated v1 API and requires PostgreSQL 14 or newer"),
]
_ENDPOINTS = [
    ("GET", "/v2/orders/{id}", "returns one order with its line items and shipping status"),
    ("POST", "/v2/orders", "creates an order; the body needs customer_id and at least one item"),
    ("DELETE", "/v2/orders/{id}", "cancels an order that has not shipped yet"),
    ("GET", "/v2/customers/{id}/invoices", "lists a customer's invoices, newest first, 50 a page"),
    ("POST", "/v2/refunds", "refunds a captured payment fully or partly by amount in cents"),
    ("PATCH", "/v2/customers/{id}", "updates a customer's name, e-mail or billing address"),
    ("GET", "/v2/products", "lists products and accepts a category filter and a cursor"),
    ("POST", "/v2/webhooks", "registers a webhook URL for a list of event types"),
]
_SETTINGS = [
    ("ACME_DB_POOL_SIZE", "10", "the number of database connections each worker keeps open"),
    ("ACME_DB_POOL_TIMEOUT", "30", "seconds to wait for a free database connection"),
    ("ACME_CACHE_TTL", "300", "seconds a cached API response stays valid"),
    ("ACME_MAX_UPLOAD_MB", "25", "the largest attachment a user can upload, in megabytes"),
    ("ACME_SESSION_TTL", "43200", "seconds before an idle login session expires"),
    ("ACME_WORKER_CONCURRENCY", "4", "how many background jobs one worker runs at once"),
    ("ACME_LOG_LEVEL", "info", "the minimum severity written to the application log"),
    ("ACME_SMTP_HOST", "mail.internal", "the mail server used for outgoing e-mail"),
]
_OFFICES = [
    ("Berlin", "Torstrasse 118", "the engineering hub for the payments team"),
    ("Lisbon", "Rua Augusta 42", "home of customer support for Southern Europe"),
    ("Toronto", "220 King Street West", "the sales office for North America"),
    ("Singapore", "8 Marina View", "the regional office for Asia-Pacific"),
    ("Dublin", "5 Hanover Quay", "our European headquarters and legal entity"),
    ("Austin", "600 Congress Avenue", "the data science and analytics team"),
]
_PLANS = [
    ("Starter", "9 euros per user per month", "up to 5 users and community support"),
    ("Team", "19 euros per user per month", "up to 50 users and e-mail support"),
    ("Business", "39 euros per user per month", "unlimited users, SSO and phone support"),
    ("Enterprise", "a custom annual contract", "a dedicated account manager and a 99.95% SLA"),
]
_REGIONS = [
    ("eu-west-1", "Ireland", "the default region for European customers"),
    ("eu-central-1", "Frankfurt", "used by customers who need data kept in Germany"),
    ("us-east-1", "Virginia", "the default region for American customers"),
    ("us-west-2", "Oregon", "the disaster-recovery region for us-east-1"),
    ("ap-southeast-1", "Singapore", "serving customers in Asia-Pacific"),
]
_COMMANDS = [
    ("acmectl db migrate", "applies pending database migrations"),
    ("acmectl db rollback", "reverts the most recent database migration"),
    ("acmectl user disable", "blocks a user's login and revokes their tokens"),
    ("acmectl cache flush", "empties the shared response cache"),
    ("acmectl tenant export", "writes a tenant's data to a zip archive"),
    ("acmectl certs renew", "renews the TLS certificates before they expire"),
    ("acmectl queue drain", "stops taking new jobs and waits for running ones to finish"),
]

_WRITTEN: dict[str, str] = {
    # HR policy
    "bereavement": "Employees may take up to five days of paid bereavement leave when a close "
    "family member dies.",
    "jury-duty": "Time spent on jury service is paid in full; show the court summons to HR.",
    "sabbatical": "After five years of service staff can request an unpaid sabbatical of up to "
    "six months.",
    "probation": "New employees are on probation for the first six months, with a review at "
    "the end of month three.",
    "notice-period": "Either side must give one month of notice during probation and three "
    "months afterwards.",
    "overtime": "Overtime must be approved in advance by a manager and is compensated with "
    "time off in lieu.",
    "training-budget": "Each employee has a yearly learning budget of 1,500 euros for courses, "
    "books and conferences.",
    "equipment": "Every new hire gets a laptop, a monitor and a headset; replacements are "
    "ordered through the IT portal.",
    "gifts": "Gifts from suppliers worth more than fifty euros must be declared to compliance.",
    "whistleblowing": "Concerns about fraud or misconduct can be raised anonymously through the "
    "ethics hotline.",
    "harassment": "Harassment of any kind is not tolerated; report it to HR or your manager's "
    "manager.",
    "performance-review": "Performance reviews happen twice a year, in January and July, with "
    "written feedback from peers.",
    "salary-payment": "Salaries are paid on the twenty-fifth of each month by bank transfer.",
    "relocation": "Employees moving to another office receive a relocation allowance of up to "
    "5,000 euros.",
    "referral-bonus": "Referring a candidate who is hired earns a bonus of 2,000 euros after "
    "their probation.",
    "dress-code": "There is no dress code in the office; dress smartly for meetings with "
    "customers.",
    "pets": "Dogs are welcome in the Lisbon office on Fridays if they are house-trained.",
    "volunteering": "Staff get two paid volunteering days a year to support a charity of their "
    "choice.",
    # Product documentation
    "sso-setup": "To enable single sign-on, an administrator uploads the identity provider's "
    "metadata XML under Settings, Security.",
    "two-factor": "Users can protect their account with an authenticator app; recovery codes "
    "are shown once when it is turned on.",
    "api-keys": "API keys are created under Settings, Developers; a key is shown only once and "
    "can be revoked at any time.",
    "rate-limits": "The public API allows 300 requests per minute per key; extra requests get "
    "HTTP 429 with a Retry-After header.",
    "webhook-retries": "Failed webhook deliveries are retried with exponential backoff for up "
    "to three days.",
    "csv-export": "Any report can be downloaded as a CSV file from the export button at the top "
    "right of the table.",
    "data-retention": "Deleted projects stay in the trash for thirty days before they are "
    "purged permanently.",
    "roles": "Workspaces have three roles: owners manage billing, admins manage members and "
    "members edit content.",
    "audit-log": "The audit log records every sign-in, permission change and data export, and "
    "keeps entries for a year.",
    "mobile-offline": "The mobile app keeps the last seven days of documents available without "
    "a connection.",
    "import-contacts": "Contacts can be imported from a spreadsheet; the first row must hold "
    "the column names.",
    "custom-domain": "To use your own domain, add a CNAME record pointing to pages.acme.example "
    "and wait for verification.",
    "notifications": "E-mail notifications can be muted per project from the bell icon in the "
    "project header.",
    "trial": "The free trial lasts fourteen days and does not need a credit card.",
    "cancel-subscription": "A subscription can be cancelled from the billing page; access "
    "continues until the end of the paid period.",
    "seat-change": "Adding seats is billed pro rata for the rest of the billing cycle; removed "
    "seats are credited at renewal.",
    # Runbooks
    "disk-full": "When a database host runs out of disk space, remove old WAL archives first, "
    "then grow the volume.",
    "cert-expiry": "The certificate alert fires fourteen days before expiry; run the renewal "
    "job and reload the load balancer.",
    "kafka-lag": "If consumer lag on the events topic keeps growing, scale the consumer group "
    "before restarting brokers.",
    "redis-memory": "When Redis memory passes ninety percent, check for keys without a TTL "
    "before adding memory.",
    "oncall-handover": "The on-call rotation hands over every Monday at ten with a short "
    "written summary of open alerts.",
    "postmortem": "Every severity-one incident gets a blameless postmortem within five working "
    "days.",
    "dns-outage": "If internal names stop resolving, fail over to the secondary DNS resolvers "
    "listed in the network runbook.",
    "rollback": "To roll back a bad release, redeploy the previous image tag from the release "
    "pipeline; do not revert by hand.",
    "queue-backlog": "A growing job backlog usually means a stuck worker; drain the queue, "
    "then restart the workers one by one.",
    "ssh-access": "Production SSH access is granted for eight hours through the access portal "
    "and is logged.",
    "secrets-rotation": "Database passwords and API secrets are rotated every ninety days by "
    "the secrets manager.",
    "load-test": "Load tests run against the staging environment only, never against "
    "production, and are announced in the ops channel.",
    "status-page": "Customer-facing outages are announced on the status page within fifteen "
    "minutes of being confirmed.",
    "memory-leak": "When a service's memory grows steadily until it is killed, capture a heap "
    "profile before restarting it.",
    # IT and facilities
    "printer": "The printers on every floor print double-sided by default; badge in at the "
    "printer to release a job.",
    "meeting-rooms": "Meeting rooms are booked through the calendar and are released if nobody "
    "checks in within ten minutes.",
    "wifi-guest": "Visitors use the guest Wi-Fi; the password changes every Monday and is "
    "posted at reception.",
    "laptop-lost": "A lost or stolen laptop must be reported to the IT service desk at once "
    "so it can be wiped remotely.",
    "software-request": "Software that is not in the company catalogue needs a security review "
    "before installation.",
    "bike-storage": "Bicycles can be stored in the basement; showers are on the ground floor.",
    "first-aid": "First-aid kits are kept next to the lifts on every floor; trained first "
    "aiders wear a green lanyard.",
    "canteen": "The canteen serves lunch from half past eleven to two, with a vegetarian dish "
    "every day.",
}

_CODENAMES = [
    ("Heron", "the full-text search service", "January"),
    ("Falcon", "the payments gateway", "February"),
    ("Condor", "the data warehouse loader", "April"),
    ("Harrier", "the push notification service", "May"),
    ("Kite", "the customer onboarding wizard", "July"),
    ("Plover", "the internal admin console", "August"),
    ("Puffin", "the e-mail delivery service", "September"),
    ("Wren", "the feature flag service", "November"),
]
_SHORTCUTS = [
    ("Ctrl+K", "opens the command palette"),
    ("Ctrl+Shift+K", "deletes the current line"),
    ("Ctrl+B", "toggles the sidebar"),
    ("Ctrl+Shift+B", "shows the bookmarks bar"),
    ("Ctrl+/", "comments out the selected lines"),
    ("Ctrl+Shift+P", "opens the print preview"),
    ("Alt+Enter", "opens the properties of the selection"),
    ("Ctrl+Alt+T", "opens a new terminal tab"),
]
_SEVERITIES = [
    ("SEV-1", "the whole service is down for all customers", "15 minutes", "around the clock"),
    ("SEV-2", "a major feature is broken for many customers", "1 hour", "around the clock"),
    ("SEV-3", "a feature is degraded with a workaround", "1 business day", "in business hours"),
    ("SEV-4", "a cosmetic issue or a question", "3 business days", "in business hours"),
]
_PUBLIC_HOLIDAYS = [
    ("Germany", "German Unity Day on the third of October"),
    ("Portugal", "Portugal Day on the tenth of June"),
    ("Canada", "Canada Day on the first of July"),
    ("Singapore", "National Day on the ninth of August"),
    ("Ireland", "Saint Patrick's Day on the seventeenth of March"),
    ("the United States", "Independence Day on the fourth of July"),
]
_LAPTOPS = [
    ("LT-14A", "engineers", "32 GB of memory and a 1 TB disk"),
    ("LT-14B", "designers", "a colour-calibrated screen and 64 GB of memory"),
    ("LT-13C", "sales staff", "a light chassis and an LTE modem"),
    ("LT-15D", "data scientists", "a GPU with 16 GB of video memory"),
    ("LT-13E", "support agents", "16 GB of memory and a headset dock"),
]
_MORE_WRITTEN: dict[str, str] = {
    "mentoring": "Every engineer can ask for a mentor from another team through the learning "
    "portal.",
    "conference-talks": "Speaking at a conference counts as work time and travel is paid from "
    "the events budget.",
    "open-source": "Contributing to open-source projects on work time needs a short approval "
    "from legal.",
    "data-classification": "Customer data is classified as confidential and may only be stored "
    "in approved systems.",
    "phishing": "Forward suspicious e-mails to the security team with the report button; do "
    "not click any links.",
    "clean-desk": "Confidential papers must be locked away at the end of the day under the "
    "clean desk rule.",
}


def _endpoint_id(method: str, route: str) -> str:
    slug = route.strip("/").replace("/", "-").replace("{", "").replace("}", "")
    return f"api-{method.lower()}-{slug}"


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
    **{
        code.lower(): f"Payment error {code} means {meaning}; {fix}."
        for code, meaning, fix in _PAYMENT_ERRORS
    },
    **{
        f"release-{version}": f"Release {version} of the Acme dashboard {change}."
        for version, change in _RELEASES
    },
    **{
        _endpoint_id(method, route): f"API reference: {method} {route} {summary}."
        for method, route, summary in _ENDPOINTS
    },
    **{
        f"setting-{name.lower().replace('_', '-')}": f"The setting {name} (default {default}) is "
        f"{meaning}."
        for name, default, meaning in _SETTINGS
    },
    **{
        f"office-{city.lower()}": f"The {city} office at {address} is {role}."
        for city, address, role in _OFFICES
    },
    **{
        f"plan-{plan.lower()}": f"The {plan} plan costs {price} and includes {features}."
        for plan, price, features in _PLANS
    },
    **{
        f"region-{region}": f"The {region} region is hosted in {place} and is {role}."
        for region, place, role in _REGIONS
    },
    **{
        f"cli-{command.split()[1]}-{command.split()[2]}": f"The command `{command}` {effect}."
        for command, effect in _COMMANDS
    },
    **{
        f"codename-{name.lower()}": f"{name} is the codename of {what}, released in {month}."
        for name, what, month in _CODENAMES
    },
    **{
        f"shortcut-{keys.lower().replace('+', '-').replace('/', 'slash')}": (
            f"In the Acme editor the shortcut {keys} {effect}."
        )
        for keys, effect in _SHORTCUTS
    },
    **{
        level.lower(): f"A {level} ticket is raised when {meaning}; support responds within "
        f"{response}, {hours}."
        for level, meaning, response, hours in _SEVERITIES
    },
    **{
        f"holiday-{country.split()[-1].lower()}": f"Staff employed in {country} also get "
        f"{holiday} off."
        for country, holiday in _PUBLIC_HOLIDAYS
    },
    **{
        f"laptop-{model.lower()}": f"The standard laptop for {who} is model {model}, with {spec}."
        for model, who, spec in _LAPTOPS
    },
    **_WRITTEN,
    **_MORE_WRITTEN,
    "kestrel": "Kestrel is the codename of our mobile banking app, released in March.",
    "osprey": "Osprey is the codename of our desktop trading terminal, released in June.",
    "merlin": "Merlin is the codename of our fraud detection service, released in October.",
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

Kind = Literal["keyword", "paraphrase", "mixed"]

# (question, id of the passage that answers it, kind): `keyword` questions hinge on an exact
# code, version or name; `paraphrase` ones share little wording with their answer; `mixed` ones
# share several words and the meaning.
QUESTIONS: list[tuple[str, str, Kind]] = [
    ("What does ERR-4471 mean?", "err-4471", "keyword"),
    ("How do I fix ERR-4741?", "err-4741", "keyword"),
    ("The display shows ERR-7144, what should I do?", "err-7144", "keyword"),
    ("ERR-1447 meaning", "err-1447", "keyword"),
    ("ERR-4147 on the controller", "err-4147", "keyword"),
    ("How many litres per minute does the HX-220 move?", "hx-220", "keyword"),
    ("Which impeller does the HX-250 have?", "hx-250", "keyword"),
    ("How many ports does the Zephyr X3 have?", "zephyr-x3", "keyword"),
    ("Which Wi-Fi standard does the Zephyr X5 support?", "zephyr-x5", "keyword"),
    ("What is SKU-88231?", "sku-88231", "keyword"),
    ("What is SKU-81823?", "sku-81823", "keyword"),
    ("What is Osprey?", "osprey", "keyword"),
    ("What is Harrier?", "codename-harrier", "keyword"),
    ("What does PAY-3021 mean?", "pay-3021", "keyword"),
    ("How do I resolve PAY-1203?", "pay-1203", "keyword"),
    ("PAY-2301 error", "pay-2301", "keyword"),
    ("What changed in release 4.2.2?", "release-4.2.2", "keyword"),
    ("Which release patches CVE-2026-31337?", "release-4.3.1", "keyword"),
    ("What does DELETE /v2/orders/{id} do?", "api-delete-v2-orders-id", "keyword"),
    ("What is the default of ACME_DB_POOL_TIMEOUT?", "setting-acme-db-pool-timeout", "keyword"),
    ("ACME_WORKER_CONCURRENCY", "setting-acme-worker-concurrency", "keyword"),
    ("What does acmectl queue drain do?", "cli-queue-drain", "keyword"),
    ("What is the Ctrl+Shift+K shortcut?", "shortcut-ctrl-shift-k", "keyword"),
    ("Which laptop is the LT-15D?", "laptop-lt-15d", "keyword"),
    ("Where is eu-central-1 hosted?", "region-eu-central-1", "keyword"),
    ("How fast does support answer a SEV-3 ticket?", "sev-3", "keyword"),
    ("How much paid vacation do employees get?", "holidays", "paraphrase"),
    ("What should I do when I am sick?", "sick-leave", "paraphrase"),
    ("How long is parental leave?", "parental", "paraphrase"),
    ("Can I work from home?", "remote", "paraphrase"),
    ("When must I file my travel costs?", "expenses", "paraphrase"),
    ("I lost my access card, what now?", "security-badge", "paraphrase"),
    ("How long do passwords need to be?", "passwords", "paraphrase"),
    ("When are customers billed?", "invoices", "paraphrase"),
    ("How long do we keep database backups?", "backup", "paraphrase"),
    ("When can we not deploy to production?", "deploy", "paraphrase"),
    ("Where do we gather during a fire alarm?", "fire-drill", "paraphrase"),
    ("What warranty does hardware have?", "warranty", "paraphrase"),
    ("Someone in my family passed away, can I take days off?", "bereavement", "paraphrase"),
    ("I was called to serve on a jury, am I paid?", "jury-duty", "paraphrase"),
    ("Can I take a long unpaid break after several years?", "sabbatical", "paraphrase"),
    ("When do I get my pay each month?", "salary-payment", "paraphrase"),
    ("Is there money for books and courses?", "training-budget", "paraphrase"),
    ("A vendor sent me an expensive present, what do I do?", "gifts", "paraphrase"),
    ("How do I report fraud without giving my name?", "whistleblowing", "paraphrase"),
    ("Can I bring my dog to work?", "pets", "paraphrase"),
    ("What happens if I send too many API calls?", "rate-limits", "paraphrase"),
    ("How long before a removed project is gone for good?", "data-retention", "paraphrase"),
    ("Do I need a credit card to try the product?", "trial", "paraphrase"),
    ("The database server has no space left, what first?", "disk-full", "paraphrase"),
    ("A deploy broke production, how do we go back?", "rollback", "paraphrase"),
    ("I got a suspicious e-mail asking for my password", "phishing", "paraphrase"),
    ("Where can I keep my bicycle?", "bike-storage", "paraphrase"),
    ("What is the password of the visitors' wireless network?", "wifi-guest", "paraphrase"),
    (
        "Which release fixed the crash when exporting reports with a million rows?",
        "release-4.2.1",
        "mixed",
    ),
    ("How many days are failed webhook deliveries retried?", "webhook-retries", "mixed"),
    ("How do I set up single sign-on with the identity provider metadata?", "sso-setup", "mixed"),
    ("How much does the Business plan cost per user?", "plan-business", "mixed"),
    ("Which office is the European headquarters?", "office-dublin", "mixed"),
    ("What should I check when Redis memory is above ninety percent?", "redis-memory", "mixed"),
    ("What to do when consumer lag on the events topic grows?", "kafka-lag", "mixed"),
    ("When does the on-call rotation hand over?", "oncall-handover", "mixed"),
    ("How long are audit log entries kept?", "audit-log", "mixed"),
    ("How many paid volunteering days do staff get?", "volunteering", "mixed"),
    ("Which region is the disaster recovery region for Virginia?", "region-us-west-2", "mixed"),
    ("What is the referral bonus for a hired candidate?", "referral-bonus", "mixed"),
    ("How long is the notice period after probation?", "notice-period", "mixed"),
    (
        "Which API endpoint lists a customer's invoices?",
        "api-get-v2-customers-id-invoices",
        "mixed",
    ),
    ("How many days of documents does the mobile app keep offline?", "mobile-offline", "mixed"),
]


def export(directory: Path) -> Path:
    """Write each passage as `passages/<id>.txt` and the questions as `questions.jsonl` (the
    format of `mai kb eval`, with the expected document's file name and the question's kind)."""
    passages = directory / "passages"
    passages.mkdir(parents=True, exist_ok=True)
    for name, text in PASSAGES.items():
        (passages / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    questions = directory / "questions.jsonl"
    questions.write_text(
        "".join(
            json.dumps({"question": question, "document": f"{name}.txt", "kind": kind}) + "\n"
            for question, name, kind in QUESTIONS
        ),
        encoding="utf-8",
    )
    return questions


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.kb.retrieval_corpus DIRECTORY")
    print(export(Path(sys.argv[1])))
