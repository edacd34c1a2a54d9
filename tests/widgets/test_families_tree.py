"""A family of sockets (NAME[i], as a `repeat` block names them) is one node of the Lab pane, opened on demand.

Issue 13: a lab may hold 10,000 connections; the tree never holds a node per socket unless asked,
and the Inspector sums a family up.
"""

from __future__ import annotations

from textual.widgets import Static

from playground.script.parser import parse_script
from tests.widgets.helpers import ready, select, tree_text, wait_for
from widgets.app import SockplayApp
from widgets.inspector import Inspector
from widgets.lab_tree import PAGE, LabTree

SIZE = (120, 40)
COUNT = 250  # two pages and a half

SCRIPT = f"""sockplay 1
spawn a
spawn b
a: l = socket(tcp)
a: bind(l, 127.0.0.1:0)            = 0
a: listen(l, 512)                  = 0
repeat {COUNT} as i
b: s[i] = socket(tcp)
b: connect(s[i], a.l)              = 0
a: c[i] = accept(l)
end
b: close(s[3])                     = 0
b: write(s[5], "hi")               = 2
"""


def node_count(tree: LabTree) -> int:
    def walk(node) -> int:
        return 1 + sum(walk(child) for child in node.children)

    return walk(tree.root) - 1


async def test_a_family_is_one_node_opened_a_page_at_a_time_and_summed_up_in_the_inspector() -> None:
    app = SockplayApp(default_lab=False)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        report = await app.session.new_runner().run(parse_script(SCRIPT))
        assert report.exit_code == 0
        app.want_refresh()
        # One node per family: the state summary counts the one the peer closed apart.
        mixed = f"c[0..{COUNT - 1}]  {COUNT} tcp: {COUNT - 1} ESTABLISHED · 1 CLOSE-WAIT  1 busy: in 2 B out 0 B"
        await wait_for(pilot, lambda: mixed in tree_text(app), "the family c in the Lab pane", timeout=20)
        assert f"s[0..{COUNT - 1}]  {COUNT - 1} tcp ESTABLISHED  (1 missing)" in tree_text(app)
        tree = app.screen_stack[0].query_one(LabTree)
        assert node_count(tree) < 10  # two processes, a listener, two families

        # Selected, the family is summed up in the Inspector.
        await select(pilot, ("family", "a", "c"))
        inspector = app.screen_stack[0].query_one(Inspector)
        await wait_for(pilot, lambda: inspector.current == "family-panel", "the family panel")
        assert inspector.border_title == f"Inspector · a.c[0..{COUNT - 1}] ({COUNT} sockets)"
        text = str(inspector.query_one("#family-text", Static).render())
        assert "ESTABLISHED" in text and "c[3]" in text and "in 2 B" in text and "indices 0..249" in text

        # Enter opens it: the first page, then a "more…" node; enter there adds the next page.
        tree.focus()
        await pilot.press("enter")
        family = tree._node_by_key[("family", "a", "c")]
        await wait_for(pilot, lambda: len(family.children) == PAGE + 1, "the first page")
        assert "more of c[0..249]" in str(family.children[-1].label)
        await select(pilot, ("more", "a", "c"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(family.children) == 2 * PAGE + 1, "the second page")
        assert node_count(tree) < 2 * PAGE + 10

        # A member beyond the pages shown opens the family as far as it; the Inspector shows that socket.
        last = app.session.names_of("a")[f"c[{COUNT - 1}]"]
        await select(pilot, ("socket", "a", last))
        assert len(family.children) == COUNT  # every member, no "more…" left
        await wait_for(pilot, lambda: inspector.current == "socket-panel", "the socket panel")

        # Closed again, the family holds no nodes.
        await select(pilot, ("family", "a", "c"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: not family.children, "the family closed")
        await app.session.shutdown()
