"""The watch gateway: off-the-shelf 4G SOS watches, in their own TCP protocols.

Two protocol families are spoken on one port, told apart by a connection's first
byte (docs/gateway.md):

- setracker.py: the "3G"/SeTracker frames ``[MM*<id>*<len hex>*<content>]``;
- iw.py: the IW/"BP" text protocol ``IWAPxx...#`` up, ``IWBPxx...#`` down;
- messages.py: what both decode to, and its translation into the up messages of
  the MQTT contract (docs/protocol.md), which go through the very same
  ``Ingestor.accept`` as an MQTT watch's;
- server.py: the asyncio TCP server, its limits, its replies and downlinks.

Nothing here opens a case or stores a row itself: the ingest does, and its
``alert_ack`` (sent only after the commit) is what becomes the protocol's reply."""
