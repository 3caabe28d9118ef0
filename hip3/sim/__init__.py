"""A local Hyperliquid-compatible exchange. Imports only hip3.core and hip3.protocol, never the bot."""
