"""The data-submission side: turning hits into on-chain submissions."""
