"""The wallet door: OpenID4VCI issuance and OpenID4VP verification of SD-JWT VCs.

Thin by design: the routes here speak the protocols (metadata, OAuth error
objects, form posts) and reach the engine through commonid.flows.wallet_issuance
and commonid.flows.presentations, never through commonid.store around them.
"""
