// SMART App Launch 2.x, EHR launch: the EHR opened this page with `iss` and `launch`.
// fhirclient reads the server's .well-known/smart-configuration and redirects to its
// authorization endpoint with launch, state and a PKCE S256 challenge.
"use strict";
fetch("config.json")
  .then((reply) => reply.json())
  .then((config) => FHIR.oauth2.authorize({
    clientId: config.clientId,
    scope: config.scope,
    redirectUri: "./",
    pkceMode: "required",
  }))
  .catch((err) => {
    document.getElementById("status").textContent = `Could not start the SMART launch: ${err.message}`;
  });
