import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The console is served by `sailplane serve` at `/` of the API's origin: same-origin API calls, no CORS.
// `npm run dev` proxies the API to a server on :8000.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
