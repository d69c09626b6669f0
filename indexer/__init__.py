"""Indexer: decode -> keyframes -> analyzers -> storage.

Import what you need from its modules (indexer.pipeline.Indexer, indexer.settings, ...): this
package file imports nothing, so `search/` and the command line's quick commands do not load
the decoders and shot detection that only an index run needs."""
