"""The command palette (ctrl+p) offers every action the keys do, plus opening any lesson and
resetting progress. The entries come from `TutorApp.palette_commands`, which builds them from
the same bindings the keys use."""
from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider


class TutorCommands(Provider):
    def _commands(self):
        commands = getattr(self.app, "palette_commands", None)
        return commands() if commands is not None else []

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
