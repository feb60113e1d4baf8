/// <reference types="node" preserve="true" />
// The Node.js types (node:async_hooks, node:http) for applications whose tsconfig lists no `types` (TypeScript 7 loads none by default).
import type { IncomingMessage } from 'node:http';
import {
  type CallHandler,
  createParamDecorator,
  type DynamicModule,
  type ExecutionContext,
  type ForwardReference,
  Global,
  Inject,
  Injectable,
  type InjectionToken,
  type MiddlewareConsumer,
  Module,
  type NestInterceptor,
  type NestMiddleware,
  type OptionalFactoryDependency,
  SetMetadata,
  type Type,
} from '@nestjs/common';
import { APP_INTERCEPTOR, ModuleRef, Reflector } from '@nestjs/core';
import { Observable } from 'rxjs';
import { type Sequelize, Sequelize as SequelizeClass } from 'sequelize';
import { type Frame, getCurrentTenantId, runInFrame } from '../context';
import { MissingTenantError, MultitenantError } from '../errors';
import { checkOptions } from '../options';
import { MULTITENANT_OPTIONS, multitenant } from '../plugin';
import type { MultitenantOptions } from '../state';
import { assertResolver, enterRequest, MIDDLEWARE_OPTIONS, type TenantMiddlewareOptions, type TenantResolver } from './resolve';

export type { ResolvedTenant, TenantMiddlewareOptions, TenantResolver } from './resolve';

/**
 * Options of `MultitenantModule.forRoot`. `Req`: the request type the resolver reads — Node's
 * `IncomingMessage` (headers, url: both adapters), or Express's `Request` as your auth middleware leaves it.
 */
export interface MultitenantModuleOptions<Req = IncomingMessage> extends TenantMiddlewareOptions {
  /**
   * The request's tenant (sync or async): an instance, an id, an array, or nothing. It receives the
   * request Nest's middleware gets: Express's `Request` with the Express adapter, Node's
   * `IncomingMessage` (headers, url) with the Fastify adapter.
   */
  resolveTenant?: TenantResolver<Req>;
  /**
   * Install `multitenant()` on the Sequelize instance of `@nestjs/sequelize` (its default connection, or
   * the one named by `connection`) with these options — as the connection is created, before its models
   * are added and before `synchronize` syncs them or any provider queries them.
   */
  multitenant?: MultitenantOptions & { connection?: string };
}

/** Options of `MultitenantModule.forRootAsync`: Nest's usual `imports`, `inject` and `useFactory`. */
export interface MultitenantModuleAsyncOptions<Req = IncomingMessage> {
  imports?: Array<Type<unknown> | DynamicModule | Promise<DynamicModule> | ForwardReference<unknown>>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /**
   * The `@nestjs/sequelize` connection the plugin goes on as it is created (the factory's options are not
   * known yet then: it is installed with its defaults, scoped from the start, and gets the factory's
   * `multitenant` options at `app.init()`). Default: the default connection.
   */
  connection?: string;
  /** Called by Nest with the providers named in `inject`. */
  useFactory: (...args: never[]) => MultitenantModuleOptions<Req> | Promise<MultitenantModuleOptions<Req>>;
}

const OPTIONS = Symbol('sequelize-multitenant:nest-options');
const WITHOUT_TENANT = 'sequelize-multitenant:without-tenant';
const REQUIRE_TENANT = 'sequelize-multitenant:require-tenant';

/** The frame each request's middleware resolved, by the Node request (either adapter). */
const frames = new WeakMap<object, Frame>();
const rawOf = (req: unknown): object => ((req as { raw?: object }).raw ?? req) as object;

/** Resolves the request's tenant before guards run, and runs the rest of the request in its frame. */
class TenantMiddleware implements NestMiddleware {
  constructor(private readonly options: MultitenantModuleOptions<never>) {}
  use(req: unknown, _res: unknown, next: (err?: unknown) => void): void {
    const { resolveTenant = () => undefined, required = false } = this.options;
    enterRequest(
      // (the application typed the request its adapter gives; this is that request)
      resolveTenant as TenantResolver<unknown>,
      req,
      required,
      'MultitenantModule',
      (frame) => {
        frames.set(rawOf(req), frame);
        next();
      },
      next,
    );
  }
}
Injectable()(TenantMiddleware);
Inject(OPTIONS)(TenantMiddleware, undefined as never, 0);

/**
 * Runs each handler in its request's frame (also where an adapter's body parsing or a guard's await
 * lost the async context), and `@WithoutTenant()` routes inside `withoutTenant`.
 */
class TenantInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}
  /**
   * The route's marks: the method's own win over its controller's (a `@RequireTenant()` route in a
   * `@WithoutTenant()` controller needs a tenant); both on one target contradict each other: refused.
   */
  private marks(context: ExecutionContext): { without: boolean; require: boolean } {
    for (const target of [context.getHandler(), context.getClass()]) {
      const without = this.reflector.get<boolean>(WITHOUT_TENANT, target) === true;
      const require = this.reflector.get<boolean>(REQUIRE_TENANT, target) === true;
      if (without && require) {
        throw new MultitenantError(
          `@WithoutTenant() and @RequireTenant() on one ${target === context.getClass() ? 'controller' : 'route'} contradict each other`,
          {
            operation: 'MultitenantModule',
          },
        );
      }
      if (without || require) return { without, require };
    }
    return { without: false, require: false };
  }
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const { without, require } = this.marks(context);
    // a message handler (microservices, websockets) has no HTTP request to resolve a tenant from
    const http = context.getType() === 'http';
    const frame: Frame | undefined = without
      ? { tenant: undefined, bypass: true }
      : http
        ? frames.get(rawOf(context.switchToHttp().getRequest()))
        : undefined;
    if (require && !frame?.tenant) {
      throw new MissingTenantError(
        http
          ? 'the request resolved to no tenant (@RequireTenant)'
          : `@RequireTenant on a ${context.getType()} handler: it has no HTTP request to resolve a tenant from`,
        { operation: 'MultitenantModule', ...(http ? { status: 401 } : {}) },
      );
    }
    if (!frame) return next.handle();
    return new Observable((subscriber) => {
      const subscription = runInFrame(frame, () => next.handle().subscribe(subscriber));
      return () => subscription.unsubscribe();
    });
  }
}
Injectable()(TenantInterceptor);
Inject(Reflector)(TenantInterceptor, undefined as never, 0);

/** @nestjs/sequelize's name of its default connection. */
const DEFAULT_CONNECTION = 'default';
/** Per connection name: the options its Sequelize instance gets as it is created (the latest module's). */
const atCreation = new Map<string, () => MultitenantOptions>();
let creationHooked = false;

/**
 * Installs the plugin on a connection's Sequelize instance as it is created: Sequelize runs its
 * `afterInit` hooks at the end of its constructor — before sequelize-typescript adds the models given in
 * the options, before @nestjs/sequelize adds its entities and runs `synchronize`. (A Sequelize instance
 * is told by its connection name, the `name` option @nestjs/sequelize hands to it.)
 */
function installAtCreation(connection: string | undefined, options: () => MultitenantOptions): void {
  atCreation.set(connection ?? DEFAULT_CONNECTION, options);
  if (creationHooked) return;
  creationHooked = true;
  SequelizeClass.addHook('afterInit', (instance: Sequelize) => {
    const name = (instance as unknown as { options?: { name?: string } }).options?.name ?? DEFAULT_CONNECTION;
    const options = atCreation.get(name);
    if (options) multitenant(instance, options());
  });
}

/** Installs `multitenant()` on the `@nestjs/sequelize` connection when asked to (again at start: the options of forRootAsync). */
class MultitenantInstaller {
  constructor(
    private readonly options: MultitenantModuleOptions,
    private readonly moduleRef: ModuleRef,
  ) {}
  async onModuleInit(): Promise<void> {
    const plugin = this.options.multitenant;
    if (!plugin) return;
    const { connection, ...options } = plugin;
    // @nestjs/sequelize's token: the Sequelize class for the default connection, `<name>Connection` otherwise
    const { getConnectionToken } = (await import('@nestjs/sequelize')) as { getConnectionToken(name?: string): unknown };
    let sequelize: Sequelize;
    try {
      sequelize = this.moduleRef.get(getConnectionToken(connection) as string, { strict: false }) as Sequelize;
    } catch (err) {
      throw new MultitenantError(
        `MultitenantModule: there is no @nestjs/sequelize connection ${connection === undefined ? '(the default one)' : `named '${connection}'`} to install multitenant() on: give multitenant.connection the name your SequelizeModule.forRoot({ name }) uses (${(err as Error).message})`,
        { operation: 'MultitenantModule' },
      );
    }
    multitenant(sequelize, options);
  }
}
Injectable()(MultitenantInstaller);
Inject(OPTIONS)(MultitenantInstaller, undefined as never, 0);
Inject(ModuleRef)(MultitenantInstaller, undefined as never, 1);

/**
 * A NestJS module (Nest 11, Express and Fastify adapters): every HTTP request runs as a unit of work of
 * its own with the tenant `resolveTenant(req)` returns — guards, interceptors, pipes and the handler see
 * it; `@WithoutTenant()` runs a route (or a controller) unscoped; `@CurrentTenant()` reads the tenant
 * into a handler parameter. Works with `@nestjs/sequelize` (`multitenant: {...}` installs the plugin on
 * its connection). Global: import it once, in the root module.
 * @example
 * @Module({ imports: [SequelizeModule.forRoot({...}), MultitenantModule.forRoot({ resolveTenant: (req) => req.headers['x-store-id'], multitenant: { strict: true } })] })
 * export class AppModule {}
 */
/** The options of forRoot (and of forRootAsync's factory), and the plugin's under `multitenant`. */
function checkModuleOptions(operation: string, options: unknown): void {
  checkOptions(operation, options, { ...MIDDLEWARE_OPTIONS, resolveTenant: 'function', multitenant: 'object' }, 'nothing was installed');
  const plugin = (options as { multitenant?: unknown } | undefined)?.multitenant;
  checkOptions(`${operation} (multitenant)`, plugin, { ...MULTITENANT_OPTIONS, connection: 'string' }, 'nothing was installed');
}

export class MultitenantModule {
  /** The module with fixed options. */
  static forRoot<Req = IncomingMessage>(options: MultitenantModuleOptions<Req> = {}): DynamicModule {
    checkModuleOptions('MultitenantModule.forRoot', options);
    assertResolver(options.resolveTenant ?? (() => undefined), 'MultitenantModule.forRoot');
    if (options.multitenant) {
      const { connection, ...plugin } = options.multitenant;
      installAtCreation(connection, () => plugin);
    }
    return MultitenantModule.with([{ provide: OPTIONS, useValue: options }]);
  }
  /** The module with options from a factory (ConfigService and the like). */
  static forRootAsync<Req = IncomingMessage>(options: MultitenantModuleAsyncOptions<Req>): DynamicModule {
    checkOptions(
      'MultitenantModule.forRootAsync',
      options,
      { imports: 'array', inject: 'array', useFactory: 'function', connection: 'string' },
      'nothing was installed',
      { required: ['useFactory'] },
    );
    let resolvedPlugin: MultitenantOptions | undefined;
    installAtCreation(options.connection, () => resolvedPlugin ?? {});
    return {
      ...MultitenantModule.with([
        {
          provide: OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) => {
            const resolved = await options.useFactory(...(args as never[]));
            checkModuleOptions('MultitenantModule.forRootAsync (the factory)', resolved);
            assertResolver(resolved.resolveTenant ?? (() => undefined), 'MultitenantModule.forRootAsync');
            if (resolved.multitenant) {
              const { connection, ...plugin } = resolved.multitenant;
              resolvedPlugin = plugin;
              return { ...resolved, multitenant: { ...resolved.multitenant, connection: connection ?? options.connection } };
            }
            return resolved;
          },
        },
      ]),
      imports: options.imports ?? [],
    };
  }
  private static with(providers: DynamicModule['providers']): DynamicModule {
    return {
      module: MultitenantModule,
      global: true,
      providers: [...(providers ?? []), TenantMiddleware, MultitenantInstaller, { provide: APP_INTERCEPTOR, useClass: TenantInterceptor }],
    };
  }
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(TenantMiddleware).forRoutes('*');
  }
}
Global()(MultitenantModule);
Module({})(MultitenantModule);

/**
 * Marks a route handler or a controller to run inside `withoutTenant` (admin, sign-up, health checks).
 * @example
 * @WithoutTenant() @Post('signup') signUp() { return Store.create({...}); }
 */
export const WithoutTenant = (): MethodDecorator & ClassDecorator => SetMetadata(WITHOUT_TENANT, true);

/**
 * Marks a route handler or a controller to need a tenant: a request that resolved to none fails with
 * `MissingTenantError` before the handler runs (`required: true` in the module's options does it for all).
 * @example
 * @RequireTenant() @Get('orders') list() { return Order.findAll(); }
 */
export const RequireTenant = (): MethodDecorator & ClassDecorator => SetMetadata(REQUIRE_TENANT, true);

/**
 * A handler parameter holding the current tenant's id (`getCurrentTenantId()`), or undefined.
 * @example
 * @Get('me') me(@CurrentTenant() storeId: number) { return storeId; }
 */
export const CurrentTenant: () => ParameterDecorator = createParamDecorator(() => getCurrentTenantId());
