// The interactive API page: Swagger UI over /api/v1/openapi.json, from this server only.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (!root || typeof SwaggerUIBundle === "undefined") return;
  window.tideflowApiPage = SwaggerUIBundle({
    url: root.dataset.spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // never send the spec to the online validator
    tryItOutEnabled: false,
    requestInterceptor: (request) => {
      // A browser's write needs the page's CSRF token (the cookie's double).
      if (meta && request.method && request.method.toUpperCase() !== "GET") {
        request.headers["X-CSRF-Token"] = meta.content;
      }
      return request;
    },
  });
});
