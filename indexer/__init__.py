"""Indexer: decode -> keyframes -> analyzers -> storage.

Import what you need from its modules (evr.indexer.run.run, evr.indexer.sources, ...): this
package file imports nothing, so `search/` and the command line's quick commands do not load
the decoders and shot detection that only an index run needs."""
