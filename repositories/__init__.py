"""One class per collection. Repositories never import discord."""
