# portcullis image (multi-stage). Final form, with the injector and CI-exercised build steps,
# arrives with the Helm work; this one already builds what `npm run build` builds.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
USER 65532:65532
EXPOSE 8080 9901
ENTRYPOINT ["node", "/app/dist/main.js"]
CMD ["run", "--config", "/etc/portcullis/portcullis.yaml"]
