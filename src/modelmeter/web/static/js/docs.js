// Starts Swagger UI on /docs. A file of ours rather than an inline script, so that the page's
// CSP can say script-src 'self'. validatorUrl null: never ask an online validator (offline use).
window.ui = window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  validatorUrl: null,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
