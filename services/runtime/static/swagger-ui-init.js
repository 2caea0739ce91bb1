// Starts Swagger UI on the docs page. A file, not an inline script: every HTML page's Content-Security-Policy
// admits scripts from the service itself only (services/runtime/security_headers.py).
"use strict";
(function () {
  var target = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: target.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the public validator is another host: the page talks to this service only
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
