"""A turn's span tree (interaction → llm_request / tool → blocked_on_user / execution) and a
node's attributes. Built from events, and labelled so, when the session sent no spans; built
again as the turn's telemetry arrives, the cursor kept on its node."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode as UITreeNode

from claude_top.core import format as fmt
from claude_top.core.export import PaneView, SnapshotScope
from claude_top.core.queries import TreeNode
from claude_top.core.schema import SOURCE_TRANSCRIPT
from claude_top.ui.clipboard import copy_text
from claude_top.ui.data import load_tree
from claude_top.ui.panes.footer import KeysFooter
from claude_top.ui.panes.header import HeaderBar
from claude_top.ui.panes.table import theme_style
from claude_top.ui.screens.live import LiveScreen

EVENTS_NOTE = (
    "built from events: this session sent no spans (traces need "
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER=otlp)"
)
TRANSCRIPT_NOTE = (
    "built from Claude Code's transcript: telemetry was off for this session (no spans, "
    "times from the transcript's lines)"
)
ATTRIBUTES_FILE = "claude-top-attributes.json"
"""Where `c` writes a node's attributes when it cannot copy them (in `--export-dir`)."""
KIND_STYLE = {"interaction": "bold", "blocked_on_user": "muted", "tool": "accent"}


def node_text(app, node: TreeNode) -> Text:
    """A tree line: the node's label, in the error colour with a ✗ when it failed."""
    if node.is_error:
        return Text("✗ " + node.label, style=theme_style(app, "error"))
    return Text(node.label, style=theme_style(app, KIND_STYLE.get(node.kind)))


def attribute_lines(node: TreeNode) -> Table:
    """Every attribute of a node, one `key  value` row each (values as JSON when not text)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key in sorted(node.attributes):
        value = node.attributes[key]
        table.add_row(key, value if isinstance(value, str) else json.dumps(value, default=str))
    return table


def tree_rows(roots: list[TreeNode]) -> list[dict]:
    """The tree's nodes top to bottom, as `focused-tree.csv` rows."""
    rows: list[dict] = []

    def walk(node: TreeNode, depth: int) -> None:
        rows.append(
            {
                "depth": depth,
                "name": node.name,
                "kind": node.kind,
                "label": node.label,
                "start_ns": node.start_ns,
                "duration_ms": node.duration_ms,
                "error": node.is_error,
                "key": node.key,
                "attributes": node.attributes,
            }
        )
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return rows


def _signature(node: TreeNode) -> tuple:
    """What a node draws: its key, label and state, and its children's."""
    return (node.key, node.label, node.is_error, tuple(_signature(c) for c in node.children))


def _find(node: UITreeNode, key: str) -> UITreeNode | None:
    for child in node.children:
        if isinstance(child.data, TreeNode) and child.data.key == key:
            return child
        if found := _find(child, key):
            return found
    return None


class SpanTree(Tree):
    """The span tree with vi keys; Enter shows a node's attributes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Attributes", id="tree.select"),
        Binding("space", "toggle_node", "Fold", id="tree.fold"),
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("g", "scroll_home", "First node", show=False, id="tree.first"),
        Binding("G", "scroll_end", "Last node", show=False, id="tree.last"),
    ]


class SpanTreeScreen(LiveScreen):
    """One turn as a tree; below it (in a tall terminal) the highlighted node's attributes."""

    AUTO_FOCUS = "#span-tree"
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (30, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="tree.back"),
        Binding("enter", "attributes", "Attributes", show=False, id="tree.attributes"),
        Binding("space", "toggle", "Fold", show=False, id="tree.toggle"),
    ]

    def __init__(self, session_id: str, turn: dict) -> None:
        super().__init__()
        self.session_id = session_id
        self.turn = turn
        self.source: str | None = None
        self.roots: list[TreeNode] = []
        self._drawn: tuple | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Static(id="tree-title")
        yield Static(id="tree-source")
        with Vertical(id="tree-body"):
            tree: SpanTree = SpanTree("turn", id="span-tree")
            tree.show_root = False
            tree.auto_expand = False
            tree.guide_depth = 3
            yield tree
            with VerticalScroll(id="node-panel"):
                yield Static(id="node-attributes")
        yield KeysFooter()

    def on_mount(self) -> None:
        self._show_title(self.turn.get("prompt"))
        self.query_one(HeaderBar).update(self.app.header_state())
        tree = self.query_one(SpanTree)
        tree.border_title = "span tree"
        tree.border_subtitle = "Enter: attributes · Space: fold · Esc: back"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        super().on_mount()

    def _show_title(self, prompt: str | None) -> None:
        n = self.turn.get("n")
        head = f" Turn {n} · " if n else " Turn · "
        self.query_one("#tree-title", Static).update(
            Text(head, style=theme_style(self.app, "bold"))
            + Text(
                f"{fmt.one_line(prompt, 70) or '(no prompt text)'} · "
                f"session {fmt.short_id(self.session_id)}"
            )
        )

    def tick(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())

    def _restyle(self) -> None:
        """Re-colour the node labels from the new theme."""

        def walk(node: UITreeNode) -> None:
            for child in node.children:
                if isinstance(child.data, TreeNode):
                    child.set_label(node_text(self.app, child.data))
                walk(child)

        walk(self.query_one(SpanTree).root)

    def load(self, inputs: None) -> tuple[list[TreeNode], str]:
        return load_tree(self.app.source, self.session_id, self.turn["key"])

    def show(self, data: tuple[list[TreeNode], str], reason: str) -> None:
        roots, source = data
        drawn = (source, tuple(_signature(r) for r in roots))
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.roots = roots
        self.source = source
        if not self.turn.get("prompt"):  # opened from a tool call: the tree knows the prompt
            asked = next(
                (
                    r.attributes.get("user_prompt") or r.attributes.get("prompt")
                    for r in roots
                    if r.kind == "interaction"
                ),
                None,
            )
            self._show_title(asked)
        note = self.query_one("#tree-source", Static)
        if source in ("events", SOURCE_TRANSCRIPT):
            said = EVENTS_NOTE if source == "events" else TRANSCRIPT_NOTE
            note.update(Text(" " + said, style=theme_style(self.app, "warning")))
        else:
            note.update(Text(" from spans", style=theme_style(self.app, "muted")))
        tree = self.query_one(SpanTree)
        cursor = tree.cursor_node.data if tree.cursor_node is not None else None
        keep = cursor.key if isinstance(cursor, TreeNode) else None
        tree.clear()
        for root in roots:
            self._add(tree.root, root)
        tree.root.expand_all()
        if not roots:
            tree.root.add_leaf("no telemetry for this turn")
        target = _find(tree.root, keep) if keep else None
        tree.move_cursor(target or (tree.root.children[0] if tree.root.children else None))

    def snapshot_scope(self) -> SnapshotScope:
        """Ctrl-S: this turn's tree as shown (every node, with its depth), its spans and
        events, and the session's other tables."""
        view = PaneView("tree", tree_rows(self.roots), session_id=self.session_id)
        return SnapshotScope(
            "all", session_id=self.session_id, turn_key=self.turn["key"], view=view
        )

    def _add(self, parent: UITreeNode, node: TreeNode) -> None:
        text = node_text(self.app, node)
        if node.children:
            branch = parent.add(text, data=node, expand=True)
            for child in node.children:
                self._add(branch, child)
        else:
            parent.add_leaf(text, data=node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        node = event.node.data
        self.query_one("#node-attributes", Static).update(
            attribute_lines(node) if isinstance(node, TreeNode) else ""
        )
        self.query_one("#node-panel").border_title = (
            f"{node.name} · {len(node.attributes)} attributes" if isinstance(node, TreeNode) else ""
        )

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        event.stop()
        self._show(event.node.data)

    def action_attributes(self) -> None:
        node = self.query_one(SpanTree).cursor_node
        self._show(node.data if node else None)

    def action_toggle(self) -> None:
        node = self.query_one(SpanTree).cursor_node
        if node is not None and node.allow_expand:
            node.toggle()

    def _show(self, node: object) -> None:
        if isinstance(node, TreeNode):
            self.app.push_screen(AttributesScreen(node))

    def action_back(self) -> None:
        self.app.pop_screen()


class AttributesScreen(Screen):
    """Every attribute of one span (or event standing in for one); `c` copies them as JSON."""

    AUTO_FOCUS = "#attributes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="attributes.back"),
        Binding("c", "copy", "Copy JSON", id="attributes.copy"),
        Binding("j", "scroll_down", "Down", show=False, id="attributes.down"),
        Binding("k", "scroll_up", "Up", show=False, id="attributes.up"),
        Binding("g", "scroll_top", "Top", show=False, id="attributes.top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="attributes.bottom"),
    ]

    def __init__(self, node: TreeNode) -> None:
        super().__init__()
        self.node = node

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield Static(node_text(self.app, self.node), id="attributes-title")
        with VerticalScroll(id="attributes", classes="pane"):
            yield Static(attribute_lines(self.node))
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(HeaderBar).update(self.app.header_state())
        pane = self.query_one("#attributes")
        pane.border_title = f"{self.node.name} · {len(self.node.attributes)} attributes"
        pane.border_subtitle = "Esc: back · c: copy JSON"

    def _scroll(self):
        return self.query_one("#attributes", VerticalScroll)

    def action_scroll_down(self) -> None:
        self._scroll().scroll_down(animate=False)

    def action_scroll_up(self) -> None:
        self._scroll().scroll_up(animate=False)

    def action_scroll_top(self) -> None:
        self._scroll().scroll_home(animate=False)

    def action_scroll_bottom(self) -> None:
        self._scroll().scroll_end(animate=False)

    def action_copy(self) -> None:
        """Copy the attributes as JSON, and say where they went."""
        text = json.dumps(self.node.attributes, indent=2, default=str) + "\n"
        where = copy_text(self.app, text, self.app.export_dir / ATTRIBUTES_FILE)
        self.notify(f"attributes (JSON) {where}", timeout=8)

    def action_back(self) -> None:
        self.app.pop_screen()
