// What the README's and docs' code blocks may use without declaring it: an application's Sequelize
// instance, its models and the usual objects of each host. Each block is type-checked as a module of
// its own against the built package (test/docs.test.ts); a block that imports a name shadows these.
import type * as bullmq from 'bullmq';
import type * as expressModule from 'express';
import type { FastifyInstance } from 'fastify';
import type Koa from 'koa';
import type {
  CreationOptional,
  InferAttributes,
  InferCreationAttributes,
  Model,
  QueryInterface,
  Sequelize as SequelizeInstance,
} from 'sequelize';
import type * as multitenantModule from 'sequelize-multitenant';

declare global {
  // the application
  const sequelize: SequelizeInstance;
  const queryInterface: QueryInterface;
  const app: expressModule.Express;
  const fastify: FastifyInstance;
  // a Koa app, typed by @types/koa (koa ships no types of its own)
  const koa: Koa;
  const connection: bullmq.ConnectionOptions;
  const emitter: NodeJS.EventEmitter;
  const job: { data: { storeId: string } };
  function storeOf(job: unknown): Promise<string>;
  function sendInvoices(): Promise<void>;
  function handle(req: unknown): Promise<void>;
  function nightlyReport(): Promise<void>;
  function authenticate(req: expressModule.Request, res: expressModule.Response, next: expressModule.NextFunction): void;

  // its models
  class Store extends Model<InferAttributes<Store>, InferCreationAttributes<Store>> {
    id: CreationOptional<string>;
    name: string;
    slug: CreationOptional<string>;
  }
  class Product extends Model<InferAttributes<Product>, InferCreationAttributes<Product>> {
    id: CreationOptional<string>;
    store_id: CreationOptional<string>;
    name: string;
    price: CreationOptional<number>;
  }
  class Purchase extends Model<InferAttributes<Purchase>, InferCreationAttributes<Purchase>> {
    id: CreationOptional<string>;
    store_id: CreationOptional<string>;
    product_id: string;
    quantity: CreationOptional<number>;
  }
  class User extends Model<InferAttributes<User>, InferCreationAttributes<User>> {
    id: CreationOptional<string>;
    store_id: CreationOptional<string>;
    email: string;
  }
  class Country extends Model<InferAttributes<Country>, InferCreationAttributes<Country>> {
    code: string;
    name: string;
  }
  const store: Store;
  const bigStore: Store;

  // what blocks use from libraries without importing it
  const Sequelize: typeof import('sequelize').Sequelize;
  const DataTypes: typeof import('sequelize').DataTypes;
  const Op: typeof import('sequelize').Op;
  namespace express {
    type Request = expressModule.Request;
    type Response = expressModule.Response;
    type NextFunction = expressModule.NextFunction;
  }

  // the library's main entry, for blocks that show a call without its import line
  const multitenant: typeof multitenantModule.multitenant;
  const withTenant: typeof multitenantModule.withTenant;
  const withoutTenant: typeof multitenantModule.withoutTenant;
  const withTenantContext: typeof multitenantModule.withTenantContext;
  const setCurrentTenant: typeof multitenantModule.setCurrentTenant;
  const unsetCurrentTenant: typeof multitenantModule.unsetCurrentTenant;
  const getCurrentTenant: typeof multitenantModule.getCurrentTenant;
  const getCurrentTenantId: typeof multitenantModule.getCurrentTenantId;
  const bindTenant: typeof multitenantModule.bindTenant;
  const tenantMiddleware: typeof multitenantModule.tenantMiddleware;
  const routerOnly: typeof multitenantModule.routerOnly;
  const tenantStats: typeof multitenantModule.tenantStats;
  const isolateTenant: typeof multitenantModule.isolateTenant;
  const enableRowLevelSecurity: typeof multitenantModule.enableRowLevelSecurity;
  const disableRowLevelSecurity: typeof multitenantModule.disableRowLevelSecurity;
  const createDistributedTable: typeof multitenantModule.createDistributedTable;
  const createReferenceTable: typeof multitenantModule.createReferenceTable;
  const undistributeTable: typeof multitenantModule.undistributeTable;
  const addTenantForeignKey: typeof multitenantModule.addTenantForeignKey;
  const exportTenant: typeof multitenantModule.exportTenant;
  const deleteTenant: typeof multitenantModule.deleteTenant;
  const importTenant: typeof multitenantModule.importTenant;
  const copyTenant: typeof multitenantModule.copyTenant;
  const MultitenantError: typeof multitenantModule.MultitenantError;
  const fastifyTenant: typeof import('sequelize-multitenant/fastify').fastifyTenant;
  const koaTenant: typeof import('sequelize-multitenant/koa').koaTenant;
  const MultitenantModule: typeof import('sequelize-multitenant/nestjs').MultitenantModule;
  const tenantQueue: typeof import('sequelize-multitenant/bullmq').tenantQueue;
  const tenantProcessor: typeof import('sequelize-multitenant/bullmq').tenantProcessor;
  const tenantFlowProducer: typeof import('sequelize-multitenant/bullmq').tenantFlowProducer;
}
