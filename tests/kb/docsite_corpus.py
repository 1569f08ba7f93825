"""A small documentation site, as Sphinx and DocBook publish it, with labelled questions.

Every page carries the chrome real generated manuals have (navigation bars with Prev / Up / Home
/ Next, a sidebar table of contents naming every page, a local table of contents, a footer
naming the neighbouring pages, permalink marks), note / tip / warning boxes marked up with
headings, definition lists of configuration parameters and tables. The questions are asked the
way users ask: some with the exact parameter or code, most paraphrased.
"""

# ruff: noqa: E501  (the page templates are generator markup, kept one element per line)

from __future__ import annotations

import html
from dataclasses import dataclass, field

SITE = "Zephyr Router 2.1 documentation"
# Words that only page chrome contains: no chunk of a cleaned page may contain them.
CHROME_MARKERS = ("Created using Sphinx", "Previous topic", "Next topic", "Prev", "Up", "Home")


@dataclass(frozen=True)
class Section:
    """A section: heading, paragraphs, an optional admonition and text after it."""

    heading: str
    paragraphs: tuple[str, ...]
    admonition: tuple[str, str] | None = None  # (kind, text)
    after: str | None = None


@dataclass(frozen=True)
class Page:
    """One manual page."""

    slug: str
    title: str
    intro: str
    sections: tuple[Section, ...]
    parameters: tuple[tuple[str, str], ...] = ()
    table: tuple[tuple[str, ...], ...] = ()  # first row is the header
    style: str = "sphinx"
    questions: tuple[tuple[str, bool], ...] = field(default=())  # (question, keyword?)


PAGES: tuple[Page, ...] = (
    Page(
        "install",
        "Installing the router",
        "This chapter explains how to unpack, mount and power the Zephyr router for the first "
        "time, and what the front lights mean while it starts.",
        (
            Section(
                "Mounting",
                (
                    "The router can stand on a desk on its rubber feet or hang on a wall from the "
                    "two keyhole slots on its base. Keep at least ten centimetres of free space "
                    "around the vents so that warm air can leave the case.",
                ),
                ("note", "Do not mount the router inside a closed metal cabinet; it blocks radio."),
                "Screws for drywall anchors are included in the accessory bag together with a "
                "paper drilling template that shows the distance between the two slots.",
            ),
            Section(
                "Power and first boot",
                (
                    "Connect the supplied 12 volt adapter to the round socket next to the reset "
                    "hole. During the first boot the status light blinks white for about ninety "
                    "seconds while the firmware unpacks, then it turns solid blue when the "
                    "router is ready for setup through the web interface.",
                ),
            ),
        ),
        questions=(
            ("How long does the light blink white during the first start?", False),
            ("Can I hang the device on the wall?", False),
            ("What voltage does the power adapter supply?", False),
        ),
    ),
    Page(
        "wireless",
        "Wireless networks",
        "The router broadcasts up to four wireless networks on the 2.4 GHz, 5 GHz and 6 GHz "
        "bands. Each network has its own name, password and isolation settings.",
        (
            Section(
                "Choosing channels",
                (
                    "Automatic channel selection scans the air at start and every night at three "
                    "o'clock, and moves to the least crowded channel when neighbours interfere.",
                ),
                (
                    "warning",
                    "Channels 52 to 144 are shared with weather radar; the router must leave "
                    "them within seconds when radar is detected.",
                ),
                "Because of that radar rule, clients may drop briefly on those channels; choose "
                "a channel between 36 and 48 for video calls that must never pause.",
            ),
        ),
        parameters=(
            ("wifi.channel", "The fixed channel number, or auto for automatic selection."),
            ("wifi.tx_power", "Transmit power in percent of the legal maximum, 10 to 100."),
            ("wifi.band_steering", "Moves dual-band clients to 5 GHz when the signal is good."),
        ),
        questions=(
            ("Which setting lowers the transmit power of the radio?", False),
            ("wifi.band_steering", True),
            ("Why do my clients disconnect for a moment on some 5 GHz channels?", False),
        ),
    ),
    Page(
        "firewall",
        "Firewall rules",
        "The firewall filters traffic between the internet, the local network and guest "
        "networks. Rules are evaluated from top to bottom and the first match wins.",
        (
            Section(
                "Port forwarding",
                (
                    "To reach a game server or a camera from outside, forward an external port to "
                    "the address and port of the device on the local network. Give the device a "
                    "fixed address first so that the rule keeps pointing at it.",
                ),
                ("tip", "Prefer the VPN to port forwarding when only you need remote access."),
                "Forwarded ports are listed in the status page with the number of connections "
                "each rule accepted since the last restart.",
            ),
        ),
        parameters=(
            (
                "fw.default_policy",
                "What happens to incoming traffic no rule matches: drop or reject.",
            ),
            ("fw.log_dropped", "Writes a line to the system log for every dropped packet."),
        ),
        questions=(
            ("How do I make my security camera reachable from the internet?", False),
            ("fw.log_dropped", True),
            ("In which order are the filtering rules applied?", False),
        ),
    ),
    Page(
        "vpn",
        "WireGuard VPN",
        "The built-in WireGuard server lets phones and laptops join the home network securely "
        "from anywhere.",
        (
            Section(
                "Adding a peer",
                (
                    "Each phone or laptop is a peer with its own key pair. Open the VPN page, "
                    "press Add peer, and scan the QR code with the WireGuard app; the router "
                    "generates the keys and never shows the private key again.",
                ),
            ),
        ),
        parameters=(
            ("vpn.listen_port", "The UDP port the VPN server listens on, 51820 by default."),
            ("vpn.mtu", "Packet size inside the tunnel; lower it to 1380 on mobile networks."),
        ),
        questions=(
            ("How do I connect my phone to the home network while travelling?", False),
            ("Which UDP port does the tunnel server use?", False),
            ("vpn.mtu", True),
        ),
    ),
    Page(
        "errors",
        "Error codes",
        "When something fails, the status light turns red and the system log shows an error "
        "code. The table lists every code, what it means and what to do.",
        (),
        table=(
            ("Code", "Meaning", "Action"),
            ("E101", "The internet cable is unplugged", "Plug the cable into the WAN port"),
            ("E102", "No address from the provider", "Restart the modem, then the router"),
            ("E103", "The provider rejected the login", "Check the PPPoE user name and password"),
            ("E201", "The cooling fan stopped", "Contact support to replace the fan"),
            ("E202", "The case is overheating", "Move the router away from heat sources"),
            ("E301", "The firmware image is damaged", "Download the firmware again"),
            ("E302", "The update server is unreachable", "Retry the update later"),
            ("E401", "Too many failed administrator logins", "Wait fifteen minutes"),
            ("E402", "The admin certificate expired", "Renew it on the security page"),
            ("E501", "The USB drive is full", "Delete old backups from the drive"),
            ("E502", "The USB drive is not formatted", "Format it as exFAT on a computer"),
            ("E601", "The VPN key is invalid", "Remove the peer and add it again"),
            ("E602", "The VPN port is blocked upstream", "Choose another vpn.listen_port"),
            ("E701", "The radio failed its self test", "Restart; if it persists contact support"),
            ("E702", "Radar detected on the channel", "Nothing: the router changes channel"),
            ("E801", "The clock is not synchronised", "Allow NTP traffic on the network"),
            ("E802", "The parental schedule is invalid", "Edit the schedule and save it again"),
            ("E901", "The backup passphrase is wrong", "Enter the passphrase used at export"),
        ),
        questions=(
            ("E502", True),
            ("What does it mean when the update server cannot be reached?", False),
            ("The router says the case is too hot, what should I do?", False),
            ("What should I do when the provider rejects my login?", False),
        ),
    ),
    Page(
        "firmware",
        "Firmware updates",
        "New firmware fixes security problems and adds features. The router checks for updates "
        "every day and installs them in the maintenance window.",
        (
            Section(
                "Automatic updates",
                (
                    "Updates are installed between two and five o'clock at night by default. The "
                    "router restarts once, which interrupts the network for about two minutes.",
                ),
                ("tip", "Change the window on the System page if you work at night."),
                "If an update fails to start three times in a row, the router boots the "
                "previous firmware again automatically and reports the failure by e-mail.",
            ),
        ),
        questions=(
            ("At what time are updates installed?", False),
            ("What happens if a new firmware version does not boot?", False),
        ),
        style="docbook",
    ),
    Page(
        "parental",
        "Parental controls",
        "Parental controls limit when and how children's devices use the internet.",
        (
            Section(
                "Schedules",
                (
                    "A schedule blocks internet access for chosen devices during set hours, for "
                    "example from nine in the evening to seven in the morning on school days. "
                    "Devices keep access to the local network, so printing still works.",
                ),
                ("note", "Schedules need the clock to be synchronised with a time server."),
                "Pausing a device from the app overrides the schedule until the next period.",
            ),
            Section(
                "Content filters",
                (
                    "Filters block categories of websites such as gambling or adult content "
                    "using a list updated daily. Blocked pages show a notice explaining why.",
                ),
            ),
        ),
        questions=(
            ("How can I stop my kids from going online at night?", False),
            ("Can I block gambling websites?", False),
        ),
        style="docbook",
    ),
    Page(
        "backup",
        "Backup and restore",
        "The whole configuration can be saved to a file and restored on the same or a "
        "replacement router.",
        (
            Section(
                "Exporting the configuration",
                (
                    "The export is encrypted with a passphrase you choose; without it the file "
                    "cannot be restored, and support cannot recover it. Keep the passphrase in a "
                    "password manager.",
                ),
                ("warning", "A restore replaces every setting, including passwords."),
                "Backups can also be written to a USB drive every week at a time you choose.",
            ),
        ),
        questions=(
            ("I forgot the password of my settings file, can support help?", False),
            ("Can the router save its settings to a USB stick automatically?", False),
        ),
    ),
    Page(
        "monitoring",
        "Monitoring",
        "The router reports its health to monitoring systems and keeps traffic graphs for the "
        "last thirty days.",
        (
            Section(
                "Traffic graphs",
                (
                    "Graphs show the bandwidth each device used per hour and per day, so you can "
                    "find which device saturates the connection in the evening.",
                ),
            ),
        ),
        parameters=(
            ("snmp.community", "The read-only SNMP community string; disabled when empty."),
            ("syslog.host", "The address of a remote syslog server that receives all log lines."),
        ),
        questions=(
            ("How do I send the logs to another server?", False),
            ("Which device is using all the bandwidth in the evening?", False),
            ("snmp.community", True),
        ),
    ),
    Page(
        "troubleshooting",
        "Troubleshooting",
        "Most problems are solved by a restart; when they are not, a factory reset brings the "
        "router back to the state it left the factory in.",
        (
            Section(
                "Factory reset",
                (
                    "Hold the recessed reset button with a paper clip for ten seconds until the "
                    "light flashes amber, then release it. All settings are erased and the "
                    "router starts as new, with the password printed on its label.",
                ),
                ("caution", "A reset cannot be undone; export a backup first."),
                "After the reset, sign in with the password from the label and run the setup "
                "assistant again, or restore a backup file.",
            ),
        ),
        questions=(
            ("How do I erase all settings and start over?", False),
            ("Which password works after everything is wiped?", False),
        ),
    ),
)


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _sidebar(current: Page) -> str:
    links = "".join(
        f'<li class="toctree-l1"><a href="{p.slug}.html">{_e(p.title)}</a></li>' for p in PAGES
    )
    index = PAGES.index(current)
    previous = PAGES[index - 1] if index > 0 else None
    following = PAGES[index + 1] if index + 1 < len(PAGES) else None
    parts = [
        '<div class="sphinxsidebar" role="navigation" aria-label="main navigation">',
        '<div class="sphinxsidebarwrapper"><h3><a href="index.html">Table of Contents</a></h3>',
        f"<ul>{links}</ul>",
    ]
    if previous:
        parts.append(
            f'<h4>Previous topic</h4><p class="topless"><a href="{previous.slug}.html">{_e(previous.title)}</a></p>'
        )
    if following:
        parts.append(
            f'<h4>Next topic</h4><p class="topless"><a href="{following.slug}.html">{_e(following.title)}</a></p>'
        )
    parts.append(
        '<div id="searchbox" role="search"><h3>Quick search</h3><form><input type="text" name="q"/><input type="submit" value="Go"/></form></div>'
    )
    parts.append("</div></div>")
    return "".join(parts)


def _admonition(kind: str, text: str, style: str) -> str:
    label = kind.capitalize()
    if style == "docbook":
        return f'<div class="{kind}" style="margin-left: 0.5in"><h3 class="title">{label}</h3><p>{_e(text)}</p></div>'
    return f'<div class="admonition {kind}"><p class="admonition-title">{label}</p><p>{_e(text)}</p></div>'


def _body(page: Page) -> str:
    heading = "h2"
    parts = [f"<p>{_e(page.intro)}</p>"]
    for section in page.sections:
        parts.append(f'<section id="{section.heading.lower().replace(" ", "-")}">')
        parts.append(
            f'<{heading}>{_e(section.heading)}<a class="headerlink" href="#" title="Permalink to this heading">\u00b6</a></{heading}>'
        )
        parts.extend(f"<p>{_e(text)}</p>" for text in section.paragraphs)
        if section.admonition:
            parts.append(_admonition(*section.admonition, page.style))
        if section.after:
            parts.append(f"<p>{_e(section.after)}</p>")
        parts.append("</section>")
    if page.parameters:
        parts.append(
            f'<section><{heading}>Configuration parameters</{heading}><dl class="confval">'
        )
        for name, text in page.parameters:
            parts.append(
                f'<dt class="sig sig-object" id="{name}"><span class="pre">{_e(name)}</span></dt><dd><p>{_e(text)}</p></dd>'
            )
        parts.append("</dl></section>")
    if page.table:
        header, *rows = page.table
        head = "".join(f"<th>{_e(cell)}</th>" for cell in header)
        body = "".join(
            "<tr>" + "".join(f"<td><p>{_e(cell)}</p></td>" for cell in row) + "</tr>"
            for row in rows
        )
        parts.append(
            f'<table class="docutils align-default"><thead><tr class="row-odd">{head}</tr></thead><tbody>{body}</tbody></table>'
        )
    return "".join(parts)


def _local_toc(page: Page) -> str:
    items = "".join(
        f'<li><a class="reference internal" href="#">{_e(s.heading)}</a></li>'
        for s in page.sections
    )
    if page.parameters:
        items += '<li><a class="reference internal" href="#">Configuration parameters</a></li>'
    return f'<nav class="contents local" id="contents"><p class="topic-title">Contents</p><ul class="simple">{items}</ul></nav>'


def sphinx_page(page: Page) -> str:
    """The page as Sphinx's classic theme publishes it."""
    index = PAGES.index(page)
    previous = PAGES[index - 1] if index > 0 else PAGES[0]
    following = PAGES[index + 1] if index + 1 < len(PAGES) else PAGES[-1]
    related = (
        '<div class="related" role="navigation" aria-label="related navigation"><h3>Navigation</h3><ul>'
        '<li class="right"><a href="genindex.html" title="General Index">index</a></li>'
        f'<li class="right"><a href="{following.slug}.html" title="{_e(following.title)}">next</a> |</li>'
        f'<li class="right"><a href="{previous.slug}.html" title="{_e(previous.title)}">previous</a> |</li>'
        f'<li class="nav-item nav-item-0"><a href="index.html">{SITE}</a> &#187;</li></ul></div>'
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"/><title>{_e(page.title)} \u2014 {SITE}</title>'
        '<link rel="stylesheet" href="_static/classic.css"/></head><body>'
        f"{related}"
        '<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">'
        f'<section id="{page.slug}"><h1>{_e(page.title)}<a class="headerlink" href="#" title="Permalink to this heading">\u00b6</a></h1>'
        f"{_local_toc(page)}{_body(page)}</section>"
        f'</div></div></div>{_sidebar(page)}<div class="clearer"></div></div>'
        f"{related}"
        '<div class="footer" role="contentinfo">&#169; Copyright 2024, Zephyr Networks. Created using Sphinx 7.2.6.</div>'
        "</body></html>"
    )


def docbook_page(page: Page) -> str:
    """The page as DocBook's XSL stylesheets publish a chapter."""
    index = PAGES.index(page)
    previous = PAGES[index - 1] if index > 0 else PAGES[0]
    following = PAGES[index + 1] if index + 1 < len(PAGES) else PAGES[-1]
    number = index + 1
    title = f"Chapter {number}. {page.title}"
    toc = "".join(
        f'<dt><span class="section"><a href="#">{number}.{i + 1}. {_e(s.heading)}</a></span></dt>'
        for i, s in enumerate(page.sections)
    )
    return (
        f'<html><head><meta http-equiv="Content-Type" content="text/html"><title>{_e(title)}</title></head><body>'
        '<div class="navheader"><table width="100%" summary="Navigation header">'
        f'<tr><th colspan="3" align="center">{_e(title)}</th></tr>'
        f'<tr><td width="20%" align="left"><a accesskey="p" href="{previous.slug}.html">Prev</a> </td>'
        '<th width="60%" align="center"> </th>'
        f'<td width="20%" align="right"> <a accesskey="n" href="{following.slug}.html">Next</a></td></tr></table><hr></div>'
        f'<div class="chapter"><div class="titlepage"><div><div><h1 class="title"><a name="{page.slug}"></a>{_e(title)}</h1></div></div></div>'
        f'<div class="toc"><p><b>Table of Contents</b></p><dl class="toc">{toc}</dl></div>'
        f"{_body(page)}</div>"
        '<div class="navfooter"><hr><table width="100%" summary="Navigation footer">'
        f'<tr><td width="40%" align="left"><a accesskey="p" href="{previous.slug}.html">Prev</a> </td>'
        '<td width="20%" align="center"> </td>'
        f'<td width="40%" align="right"> <a accesskey="n" href="{following.slug}.html">Next</a></td></tr>'
        f'<tr><td width="40%" align="left" valign="top">{_e(previous.title)} </td>'
        '<td width="20%" align="center"><a accesskey="h" href="index.html">Home</a></td>'
        f'<td width="40%" align="right" valign="top"> {_e(following.title)}</td></tr></table></div>'
        "</body></html>"
    )


def render(page: Page) -> bytes:
    """The page's HTML in its generator's style."""
    return (docbook_page(page) if page.style == "docbook" else sphinx_page(page)).encode()


def questions() -> list[tuple[str, str, bool]]:
    """(question, slug of the page that answers it, keyword question?)."""
    return [(q, page.slug, keyword) for page in PAGES for q, keyword in page.questions]
